"""thread_limit: torch's thread count restored exactly, however often the limit is entered."""
import pytest
import torch

from w2s_theory.runtime import thread_limit


@pytest.mark.parametrize("blas", [False, True])
def test_thread_limit_restores_torch_threads_every_time(blas):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for _ in range(3):    # threadpoolctl's OpenMP limit once hid the count from the 2nd block on
            with thread_limit(1, blas=blas):
                assert torch.get_num_threads() == 1
                with thread_limit(1):
                    pass
            assert torch.get_num_threads() == 2
        with thread_limit(None, blas=blas):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_thread_limit_rejects_bad_counts(bad):
    with pytest.raises(ValueError, match="num_threads"):
        thread_limit(bad)
