"""The threaded copy used by exploits and params_to_torch writes exactly np.copyto's values."""

from __future__ import annotations

import numpy as np
import pytest

from rafiki_ray.sharing._copy import CHUNK_MIN_BYTES, PARALLEL_MIN_BYTES, copy_into, copy_threads

N_BIG = PARALLEL_MIN_BYTES // 4 + 12345  # float32 elements: above the threshold, odd size


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_threaded_copy_equals_copyto(threads: int) -> None:
    rng = np.random.default_rng(0)
    src = rng.standard_normal(N_BIG - N_BIG % 5).astype(np.float32).reshape(-1, 5)
    src.setflags(write=False)  # object-store arrays are read-only
    out = np.zeros_like(src)
    copy_into(out, src, threads=threads)
    np.testing.assert_array_equal(out, src)


def test_threaded_copy_casts_like_copyto() -> None:
    src = np.linspace(-3, 3, N_BIG, dtype=np.float64)
    out, ref = np.zeros(N_BIG, np.float32), np.zeros(N_BIG, np.float32)
    copy_into(out, src, threads=4)
    np.copyto(ref, src, casting="unsafe")
    np.testing.assert_array_equal(out, ref)


def test_non_contiguous_and_small_arrays_are_copied_too() -> None:
    big = np.arange(2 * N_BIG, dtype=np.float32)
    out = np.zeros(N_BIG, np.float32)
    copy_into(out, big[::2], threads=4)  # strided source: one np.copyto
    np.testing.assert_array_equal(out, big[::2])
    small, out_small = np.arange(10.0), np.zeros(10)
    copy_into(out_small, small, threads=4)
    np.testing.assert_array_equal(out_small, small)


def test_thread_count_is_bounded() -> None:
    assert 1 <= copy_threads() <= 4
    assert CHUNK_MIN_BYTES <= PARALLEL_MIN_BYTES


def test_params_to_torch_large_tensor_goes_through_the_threaded_copy() -> None:
    torch = pytest.importorskip("torch")
    from rafiki_ray.sharing import params_to_torch, torch_to_params

    big = torch.nn.Linear(N_BIG // 1000, 1000)  # weight is about 16 MB of float32
    src = torch.nn.Linear(N_BIG // 1000, 1000)
    params = {k: v.copy() for k, v in torch_to_params(src).items()}
    assert params["weight"].nbytes >= PARALLEL_MIN_BYTES
    ptr = big.weight.data_ptr()
    params_to_torch(params, big)
    assert big.weight.data_ptr() == ptr  # written in place
    assert torch.equal(big.weight, src.weight) and torch.equal(big.bias, src.bias)
