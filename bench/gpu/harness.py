#!/usr/bin/env python3
"""GPU check of the rlhf CUDA kernels, driven through the C ABI of librlhf.so with ctypes.

1. correctness: every CUDA kernel against a float64 PyTorch reference (fresh random inputs, -inf
   logits, ignored rows, temperature != 1, odd and tiny vocabularies, misaligned rows, several row
   layouts), outputs poisoned with NaN first so that an unwritten element fails; the CPU kernels of
   the same library on the same inputs; in-place backward; a bad label reported as RLHF_ERR_INDEX.
2. timing: each kernel (median of CUDA-event timings after warm-up) against a device-to-device copy
   measured in the same run, and against PyTorch eager doing the same computation.
3. one table on stdout; results.json and results.md in --out (each phase's part-*.json in --parts).

Run by bench/gpu/check.sh; needs python3 with torch (CUDA) and numpy.
"""
import argparse
import ctypes as C
import json
import math
import os
import re
import statistics
import sys
import time
import traceback

import numpy as np

try:
    import torch
except ImportError:  # only the report phase runs without torch
    torch = None

P = C.c_void_p
I64 = C.c_int64
F64 = C.c_double  # every scalar parameter (ABI 2)
ABI = 2  # the C ABI these signatures describe (RLHF_ABI_VERSION in kernels.h)

STATUS = ["ok", "shape", "index", "param", "empty", "unavailable", "device"]
RESULTS = {"device": None, "copy": None, "checks": [], "timings": [], "failures": []}


def log(*a):
    print(*a, flush=True)


# ---- the library ---------------------------------------------------------------------------------

def load(path):
    lib = C.CDLL(path)
    sig = {
        "rlhf_abi_version": (C.c_int, []),
        "rlhf_cuda_available": (C.c_int, [C.c_char_p, C.c_size_t]),
        "rlhf_cuda_device_name": (C.c_int, [C.c_char_p, C.c_size_t]),
        "rlhf_cuda_last_error": (C.c_char_p, []),
        "rlhf_cuda_last_launch": (C.c_char_p, []),
        "rlhf_last_error": (C.c_char_p, []),
        "rlhf_cuda_stream_wrap": (C.c_int, [P, C.POINTER(P)]),
        "rlhf_cuda_stream_create": (C.c_int, [C.POINTER(P)]),
        "rlhf_cuda_stream_synchronize": (C.c_int, [P]),
        "rlhf_cuda_stream_destroy": (C.c_int, [P]),
        "rlhf_cuda_set_row_tuning": (None, [C.c_int, C.c_int]),
        "rlhf_cuda_set_row_schedule": (None, [C.c_int] * 7),
        "rlhf_cuda_malloc": (C.c_int, [C.POINTER(P), C.c_size_t]),
        "rlhf_cuda_free": (C.c_int, [P]),
        "rlhf_cuda_memcpy_htod": (C.c_int, [P, P, C.c_size_t, P]),
        "rlhf_cuda_memcpy_dtoh": (C.c_int, [P, P, C.c_size_t, P]),
        "rlhf_cuda_memcpy_dtod": (C.c_int, [P, P, C.c_size_t, P]),
        "rlhf_cuda_logprobs_f32": (C.c_int, [P, P, I64, I64, F64, I64, P, P, P, P]),
        "rlhf_cuda_logprobs_backward_f32": (C.c_int, [P, P, P, P, P, I64, I64, F64, I64, P, P]),
        "rlhf_cuda_logsoftmax_f32": (C.c_int, [P, I64, I64, F64, P, P]),
        "rlhf_cuda_logsoftmax_backward_f32": (C.c_int, [P, P, I64, I64, F64, P, P]),
        "rlhf_cuda_kl_full_f32": (C.c_int, [P, P, P, P, I64, I64, F64, P, P, P, P]),
        "rlhf_cuda_pairwise_f32": (C.c_int, [P, P, P, I64, F64, F64, P, P, P, P, P]),
        "rlhf_cuda_ranking_f32": (C.c_int, [P, P, I64, I64, P, P, P, P, P]),
        "rlhf_cuda_dpo_f32": (C.c_int, [P, P, P, P, I64, F64, C.c_int, F64, P, P, P, P, P, P, P]),
        "rlhf_logprobs_f32": (C.c_int, [P, P, I64, I64, F64, I64, P, P, P]),
        "rlhf_logprobs_backward_f32": (C.c_int, [P, P, P, P, P, I64, I64, F64, I64, P]),
        "rlhf_logsoftmax_f32": (C.c_int, [P, I64, I64, F64, P]),
        "rlhf_logsoftmax_backward_f32": (C.c_int, [P, P, I64, I64, F64, P]),
        "rlhf_kl_full_f32": (C.c_int, [P, P, P, P, I64, I64, F64, P, P, P]),
        "rlhf_pairwise_f32": (C.c_int, [P, P, P, I64, F64, F64, P, P, P, P]),
        "rlhf_ranking_f32": (C.c_int, [P, P, I64, I64, P, P, P, P]),
        "rlhf_dpo_f32": (C.c_int, [P, P, P, P, I64, F64, C.c_int, F64, P, P, P, P, P, P]),
    }
    for name, (res, args) in sig.items():
        if not hasattr(lib, name):  # a CPU-only build has no rlhf_cuda_* (the cpu phase still runs)
            continue
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    if lib.rlhf_abi_version() != ABI:  # ctypes would pass every parameter with the wrong type
        raise SystemExit(f"{path} has C ABI {lib.rlhf_abi_version()}; this harness speaks ABI {ABI}: rebuild it")
    return lib


def ptr(t):
    """Device (torch CUDA tensor) or host (numpy array) address; None stays NULL."""
    if t is None:
        return None
    if isinstance(t, np.ndarray):
        return t.ctypes.data
    return t.data_ptr()


class Cuda:
    def __init__(self, lib):
        self.lib = lib
        self.stream = P()
        raw = torch.cuda.current_stream().cuda_stream
        self.expect(lib.rlhf_cuda_stream_wrap(P(raw), C.byref(self.stream)), "stream_wrap")

    def expect(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what}: {STATUS[status]}: {self.lib.rlhf_cuda_last_error().decode()}")

    def sync(self):
        return self.lib.rlhf_cuda_stream_synchronize(self.stream)

    def tuning(self, max_cluster, cache, threads=0, unroll=0, streaming=-1, blocks_per_sm=0, split=0):
        self.lib.rlhf_cuda_set_row_schedule(max_cluster, cache, threads, unroll, streaming, blocks_per_sm, split)

    def last_launch(self):
        return self.lib.rlhf_cuda_last_launch().decode()

    # Each op: device tensors in, device tensors out (allocated here unless given).
    # stats: an [n, 3] tensor the forward fills with its row statistics and the backward reads
    # instead of recomputing them (None: not saved / recomputed).
    def logprobs(self, x, y, T, ignore, out=None, stats=None):
        n, v = x.shape
        lp, ent = out if out else (torch.empty(n, device=x.device), torch.empty(n, device=x.device))
        self.expect(self.lib.rlhf_cuda_logprobs_f32(ptr(x), ptr(y), n, v, T, ignore, ptr(lp), ptr(ent), ptr(stats),
                                                    self.stream), "logprobs")
        return lp, ent

    def logprobs_backward(self, x, y, glp, gh, T, ignore, out=None, n=None, v=None, stats=None):
        n, v = x.shape if n is None else (n, v)
        g = torch.empty(n, v, device=x.device) if out is None else out
        self.expect(self.lib.rlhf_cuda_logprobs_backward_f32(ptr(x), ptr(y), ptr(glp), ptr(gh), ptr(stats), n, v, T,
                                                             ignore, ptr(g), self.stream), "logprobs_backward")
        return g

    def logsoftmax(self, x, T, out=None):
        n, v = x.shape
        o = torch.empty(n, v, device=x.device) if out is None else out
        self.expect(self.lib.rlhf_cuda_logsoftmax_f32(ptr(x), n, v, T, ptr(o), self.stream), "logsoftmax")
        return o

    def logsoftmax_backward(self, x, g, T, out=None):
        n, v = x.shape
        o = torch.empty(n, v, device=x.device) if out is None else out
        self.expect(self.lib.rlhf_cuda_logsoftmax_backward_f32(ptr(x), ptr(g), n, v, T, ptr(o), self.stream),
                    "logsoftmax_backward")
        return o

    # saved: a forward's [n, 5] statistics (the gradient pass alone); stats: where to save them.
    def kl_full(self, xp, xq, gkl, T, grad=True, out=None, saved=None, stats=None):
        n, v = xp.shape
        if out is None:
            kl = torch.empty(n, device=xp.device)
            gp = torch.empty(n, v, device=xp.device) if grad else None
        else:
            kl, gp = out
        self.expect(self.lib.rlhf_cuda_kl_full_f32(ptr(xp), ptr(xq), ptr(gkl), ptr(saved), n, v, T, ptr(kl), ptr(gp),
                                                   ptr(stats), self.stream), "kl_full")
        return kl, gp


# ---- float64 references (one definition for torch tensors and numpy arrays) --------------------------------

class TorchOps:
    @staticmethod
    def f64(a): return a.double()
    @staticmethod
    def rowmax(a): return a.amax(-1, keepdim=True)
    @staticmethod
    def rowsum(a, keep=False): return a.sum(-1, keepdim=keep)
    @staticmethod
    def where(c, a, b): return torch.where(c, a, b)
    @staticmethod
    def gather(a, idx): return a.gather(1, idx.long()[:, None])[:, 0]
    @staticmethod
    def onehot(idx, like):
        return torch.zeros_like(like).scatter_(1, idx.long()[:, None], 1.0)
    exp, log, isfinite, zeros_like = (staticmethod(f) for f in (lambda a: a.exp(), lambda a: a.log(),
                                                                 lambda a: torch.isfinite(a), lambda a: torch.zeros_like(a)))


class NumpyOps:
    @staticmethod
    def f64(a): return np.asarray(a, dtype=np.float64)
    @staticmethod
    def rowmax(a): return a.max(-1, keepdims=True)
    @staticmethod
    def rowsum(a, keep=False): return a.sum(-1, keepdims=keep)
    @staticmethod
    def where(c, a, b): return np.where(c, a, b)
    @staticmethod
    def gather(a, idx): return np.take_along_axis(a, idx.astype(np.int64)[:, None], 1)[:, 0]
    @staticmethod
    def onehot(idx, like):
        o = np.zeros_like(like)
        o[np.arange(len(idx)), idx] = 1.0
        return o
    exp, log, isfinite, zeros_like = (staticmethod(f) for f in (np.exp, np.log, np.isfinite, np.zeros_like))


def ops_for(a):
    return NumpyOps if isinstance(a, np.ndarray) else TorchOps


def where0(cond, x):
    A = ops_for(x)
    return A.where(cond, x, A.zeros_like(x))


def log_softmax64(x, T):
    A = ops_for(x)
    z = A.f64(x) / T
    m = A.rowmax(z)
    m = A.where(A.isfinite(m), m, A.zeros_like(m))
    return z - (m + A.log(A.rowsum(A.exp(z - m), keep=True)))


def ref_logprobs(x, y, T, ignore):
    A = ops_for(x)
    lsm = log_softmax64(x, T)
    p = A.exp(lsm)
    active = y != ignore
    yy = A.where(active, y, A.zeros_like(y))
    lp = A.gather(lsm, yy)
    ent = -A.rowsum(where0(p > 0, p * lsm))
    return where0(active, lp), where0(active, ent), lsm, p


def ref_logprobs_backward(x, y, glp, gh, T, ignore):
    A = ops_for(x)
    _, ent, lsm, p = ref_logprobs(x, y, T, ignore)
    active = y != ignore
    yy = A.where(active, y, A.zeros_like(y))
    g = A.f64(glp)[:, None] * (A.onehot(yy, p) - p)
    if gh is not None:
        g = g - A.f64(gh)[:, None] * where0(p > 0, p * (lsm + ent[:, None]))
    return where0(active[:, None], g / T)


def ref_logsoftmax(x, T):
    return log_softmax64(x, T)


def ref_logsoftmax_backward(x, g, T):
    A = ops_for(x)
    p = A.exp(log_softmax64(x, T))
    gd = A.f64(g)
    return (gd - p * A.rowsum(gd, keep=True)) / T


def ref_kl(xp, xq, gkl, T):
    A = ops_for(xp)
    lp = log_softmax64(xp, T)
    lq = log_softmax64(xq, T)
    p = A.exp(lp)
    kl = A.rowsum(where0(p > 0, p * (lp - lq)))
    scale = (A.f64(gkl) if gkl is not None else kl * 0 + 1) / T
    grad = scale[:, None] * where0(p > 0, p * (lp - lq - kl[:, None]))
    return kl, grad


# ---- comparison ---------------------------------------------------------------------------------------

def every(*checks):
    """Several compare() results as one: ok where all are, the largest relative error."""
    return {"ok": all(c["ok"] for c in checks), "rel": max(c["rel"] for c in checks), "parts": list(checks)}


def compare(name, got, ref, rtol=1e-4, atol=2e-5):
    """Passes where every element with a finite reference is within atol + rtol·|ref| (NaN never passes
    there) and every non-finite reference is matched exactly: the conformance cases' rule. The relative
    L2 error ‖got − ref‖/‖ref‖ is reported for information only (it is meaningless where ref ≈ 0).
    Works on torch tensors and numpy arrays (both converted to float64)."""
    if isinstance(got, np.ndarray) or isinstance(ref, np.ndarray):
        g = np.asarray(got.cpu().numpy() if hasattr(got, "cpu") else got, dtype=np.float64)
        r = np.asarray(ref.cpu().numpy() if hasattr(ref, "cpu") else ref, dtype=np.float64)
        norm, count, equal = np.linalg.norm, np.count_nonzero, np.array_equal
        nan_to_num = lambda a: np.nan_to_num(a, posinf=1e308, neginf=-1e308, nan=7.0)
    else:
        g, r = got.double(), ref.double()
        norm, count, equal = torch.linalg.vector_norm, torch.count_nonzero, torch.equal
        nan_to_num = lambda a: a.nan_to_num(posinf=1e308, neginf=-1e308, nan=7.0)
    A = ops_for(g)
    size = lambda a: a.numel() if hasattr(a, "numel") else a.size
    finite = A.isfinite(r)
    gf, rf = g[finite], r[finite]
    diff = abs(gf - rf)
    bad_finite = int(count(~A.isfinite(gf)))
    rnorm = float(norm(rf)) if size(rf) else 0.0
    dnorm = float(norm(A.where(A.isfinite(diff), diff, diff * 0))) if size(diff) else 0.0
    rel = dnorm / max(rnorm, 1e-300)
    over = int(count(diff > atol + rtol * abs(rf))) if size(rf) else 0  # NaN compares False: bad_finite counts it
    nonfinite_ok = bool(equal(nan_to_num(g[~finite]), nan_to_num(r[~finite])))
    maxabs = float(diff.max()) if size(diff) else 0.0
    ok = bad_finite == 0 and over == 0 and nonfinite_ok
    return {"name": name, "ok": ok, "rel": rel, "maxabs": maxabs, "over_tol": over, "nan_where_finite": bad_finite,
            "nonfinite_match": nonfinite_ok, "rtol": rtol, "atol": atol}


def record_check(case, results, launch):
    ok = all(r["ok"] for r in results)
    worst = max((r["rel"] for r in results), default=0.0)
    entry = {"case": case, "ok": ok, "rel": worst, "launch": launch, "outputs": results}
    RESULTS["checks"].append(entry)
    mark = "PASS" if ok else "FAIL"
    log(f"  [{mark}] {case:<58} rel {worst:.2e}  ({launch})")
    if not ok:
        RESULTS["failures"].append(entry)
        for r in results:
            if not r["ok"]:
                log(f"         {r}")


def nan_like(shape, dev):
    return torch.full(shape, float("nan"), device=dev)


# ---- inputs ---------------------------------------------------------------------------------------------

def make_logits(n, v, gen, dev, scale=3.0, neg_inf_frac=0.0, big=False):
    x = torch.randn(n, v, generator=gen, device=dev) * scale
    if big:
        x = x * 3000.0  # ±1e4: must not overflow
    if neg_inf_frac > 0 and v > 1:
        mask = torch.rand(n, v, generator=gen, device=dev) < neg_inf_frac
        x = x.masked_fill(mask, float("-inf"))
    return x


def make_labels(n, v, gen, dev, ignore, ignore_frac, x=None):
    y = torch.randint(0, v, (n,), generator=gen, device=dev, dtype=torch.int32)
    if x is not None:
        # A label on a -inf logit has logprob -inf (valid, but not what these checks are about): move it
        # to the row's maximum.
        at = x.gather(1, y.long()[:, None])[:, 0]
        y = torch.where(torch.isinf(at), x.argmax(-1).to(torch.int32), y)
    drop = torch.rand(n, generator=gen, device=dev) < ignore_frac
    return torch.where(drop, torch.full_like(y, ignore), y)


# ---- correctness -------------------------------------------------------------------------------------------

def misaligned_copy(x):
    """x in a buffer whose rows start 4 bytes after a 16-byte boundary."""
    n, v = x.shape
    buf = torch.empty(n * v + 1, device=x.device)
    buf[1:] = x.reshape(-1)
    return buf[1:].view(n, v)


def row_inputs(n, v, gen, dev, neg_inf=0.01, big=False, misalign=False):
    """The inputs of one check_rows shape (torch, on dev): misaligned rows start 4 bytes after a 16-byte
    boundary (the scalar path)."""
    shifted = misaligned_copy if misalign else (lambda x: x)
    ignore = -100
    x = shifted(make_logits(n, v, gen, dev, neg_inf_frac=neg_inf, big=big))
    y = make_labels(n, v, gen, dev, ignore, 0.1, x)
    return {
        "x": x, "y": y, "ignore": ignore,
        "glp": torch.randn(n, generator=gen, device=dev), "gh": torch.randn(n, generator=gen, device=dev),
        "xs": shifted(make_logits(n, v, gen, dev, neg_inf_frac=neg_inf, big=big)),
        "gout": torch.randn(n, v, generator=gen, device=dev),
        # kl.full: q has no -inf (log q = -inf where p > 0 would make kl infinite)
        "xp": shifted(make_logits(n, v, gen, dev, neg_inf_frac=neg_inf, big=big)),
        "xq": shifted(make_logits(n, v, gen, dev, big=big)),
        "gkl": torch.randn(n, generator=gen, device=dev),
    }


def row_references(a, T):
    """float64 references of every check_rows output (torch or numpy, like the inputs)."""
    lp, ent, _, _ = ref_logprobs(a["x"], a["y"], T, a["ignore"])
    refs = {"logprobs": lp, "entropy": ent,
            "backward+H": ref_logprobs_backward(a["x"], a["y"], a["glp"], a["gh"], T, a["ignore"]),
            "backward": ref_logprobs_backward(a["x"], a["y"], a["glp"], None, T, a["ignore"]),
            "logsoftmax": ref_logsoftmax(a["xs"], T),
            "logsoftmax.backward": ref_logsoftmax_backward(a["xs"], a["gout"], T)}
    for gk in ("gkl", None):
        refs[("kl", gk)] = ref_kl(a["xp"], a["xq"], a[gk] if gk else None, T)
    return refs


# (gradKl, with the gradient, from saved statistics): the forward-only case saves the statistics the
# last case's gradient pass starts from.
KL_CASES = (("gkl", True, False), (None, True, False), (None, False, False), ("gkl", True, True))


def kl_label(gk, with_grad):
    return "kl.full" + (" +grad" if with_grad else " fwd") + (" gradKl" if gk is not None else "")


def check_rows(cu, n, v, T, variant, gen, dev, neg_inf=0.01, big=False, misalign=False, lib=None):
    """All five row kernels on one shape (CUDA; with lib, also the CPU kernels of librlhf.so on the same
    inputs against the same float64 references); returns nothing, records results."""
    tag = f"n={n} v={v} T={T}{' big' if big else ''}{' misaligned' if misalign else ''} [{variant}]"
    a = row_inputs(n, v, gen, dev, neg_inf, big, misalign)
    refs = row_references(a, T)
    x, y, ignore, glp, gh = a["x"], a["y"], a["ignore"], a["glp"], a["gh"]
    ok_status = lambda st: {"name": "status", "ok": st == 0, "rel": 0.0, "got": st}
    # logprobs, saving the row statistics
    lp, ent, stats = nan_like((n,), dev), nan_like((n,), dev), nan_like((n, 3), dev)
    cu.logprobs(x, y, T, ignore, out=(lp, ent), stats=stats)
    st = cu.sync()
    record_check(f"logprobs {tag}", [compare("logprobs", lp, refs["logprobs"]),
                                     compare("entropy", ent, refs["entropy"]), ok_status(st)], cu.last_launch())
    # the backward from them (no statistics pass)
    g = nan_like((n, v), dev)
    cu.logprobs_backward(x, y, glp, gh, T, ignore, out=g, stats=stats)
    st = cu.sync()
    record_check(f"logprobs.backward +H from rowStats {tag}",
                 [compare("gradLogits", g, refs["backward+H"]), ok_status(st)], cu.last_launch())
    # logprobs backward (with and without the entropy gradient), then in place
    for with_h in (True, False):
        g = nan_like((n, v), dev)
        cu.logprobs_backward(x, y, glp, gh if with_h else None, T, ignore, out=g)
        st = cu.sync()
        record_check(f"logprobs.backward{' +H' if with_h else ''} {tag}",
                     [compare("gradLogits", g, refs["backward+H" if with_h else "backward"]), ok_status(st)],
                     cu.last_launch())
    xin = misaligned_copy(x) if misalign else x.clone()
    cu.logprobs_backward(xin, y, glp, gh, T, ignore, out=xin)
    st = cu.sync()
    record_check(f"logprobs.backward in-place {tag}", [compare("gradLogits", xin, refs["backward+H"]), ok_status(st)],
                 cu.last_launch())
    # logsoftmax and its backward
    o = nan_like((n, v), dev)
    cu.logsoftmax(a["xs"], T, out=o)
    st = cu.sync()
    record_check(f"logsoftmax {tag}", [compare("logsoftmax", o, refs["logsoftmax"]), ok_status(st)], cu.last_launch())
    o = nan_like((n, v), dev)
    cu.logsoftmax_backward(a["xs"], a["gout"], T, out=o)
    st = cu.sync()
    record_check(f"logsoftmax.backward {tag}", [compare("gradLogits", o, refs["logsoftmax.backward"]), ok_status(st)],
                 cu.last_launch())
    kl_stats = nan_like((n, 5), dev)
    for gk, with_grad, saved in KL_CASES:
        kl = nan_like((n,), dev)
        gp = nan_like((n, v), dev) if with_grad else None
        cu.kl_full(a["xp"], a["xq"], a[gk] if gk else None, T, grad=with_grad, out=(kl, gp),
                   saved=kl_stats if saved else None, stats=None if with_grad else kl_stats)
        st = cu.sync()
        rkl, rgp = refs[("kl", gk)]
        outs = [compare("kl", kl, rkl, atol=1e-4), ok_status(st)]
        if with_grad:
            outs.append(compare("gradLogitsP", gp, rgp))
        record_check(f"{kl_label(gk, with_grad)}{' from rowStats' if saved else ''} {tag}", outs, cu.last_launch())
    if lib is not None:
        host = {k: (t.cpu().numpy().copy() if hasattr(t, "cpu") else t) for k, t in a.items()}
        check_cpu_rows(lib, host, refs, T, f"n={n} v={v} T={T}{' big' if big else ''}")


def check_cpu_rows(lib, a, refs, T, tag):
    """librlhf.so's CPU row kernels (host numpy inputs) against float64 references (torch or numpy):
    the same checks as check_rows, so that the table shows whether a precision issue is CUDA-only."""
    n, v = a["x"].shape
    f32 = lambda *shape: np.full(shape, np.nan, np.float32)
    ok_status = lambda st: {"name": "status", "ok": st == 0, "rel": 0.0, "got": st}
    lp, ent, stats = f32(n), f32(n), f32(n, 3)
    st = lib.rlhf_logprobs_f32(ptr(a["x"]), ptr(a["y"]), n, v, T, a["ignore"], ptr(lp), ptr(ent), ptr(stats))
    record_check(f"cpu logprobs {tag}", [compare("logprobs", lp, refs["logprobs"]),
                                         compare("entropy", ent, refs["entropy"]), ok_status(st)], "cpu")
    for with_h, saved in ((True, None), (False, None), (True, stats)):
        g = f32(n, v)
        st = lib.rlhf_logprobs_backward_f32(ptr(a["x"]), ptr(a["y"]), ptr(a["glp"]), ptr(a["gh"]) if with_h else None,
                                            ptr(saved), n, v, T, a["ignore"], ptr(g))
        record_check(f"cpu logprobs.backward{' +H' if with_h else ''}{' from rowStats' if saved is not None else ''} {tag}",
                     [compare("gradLogits", g, refs["backward+H" if with_h else "backward"]), ok_status(st)], "cpu")
    o = f32(n, v)
    st = lib.rlhf_logsoftmax_f32(ptr(a["xs"]), n, v, T, ptr(o))
    record_check(f"cpu logsoftmax {tag}", [compare("logsoftmax", o, refs["logsoftmax"]), ok_status(st)], "cpu")
    o = f32(n, v)
    st = lib.rlhf_logsoftmax_backward_f32(ptr(a["xs"]), ptr(a["gout"]), n, v, T, ptr(o))
    record_check(f"cpu logsoftmax.backward {tag}",
                 [compare("gradLogits", o, refs["logsoftmax.backward"]), ok_status(st)], "cpu")
    kl_stats = f32(n, 5)
    for gk, with_grad, saved in KL_CASES:
        kl = f32(n)
        gp = f32(n, v) if with_grad else None
        st = lib.rlhf_kl_full_f32(ptr(a["xp"]), ptr(a["xq"]), ptr(a[gk]) if gk else None, ptr(kl_stats) if saved else None,
                                  n, v, T, ptr(kl), ptr(gp), None if with_grad else ptr(kl_stats))
        rkl, rgp = refs[("kl", gk)]
        outs = [compare("kl", kl, rkl, atol=1e-4), ok_status(st)]
        if with_grad:
            outs.append(compare("gradLogitsP", gp, rgp))
        record_check(f"cpu {kl_label(gk, with_grad)}{' from rowStats' if saved else ''} {tag}", outs, "cpu")


def numpy_row_inputs(n, v, rng, neg_inf=0.01, big=False):
    """row_inputs without torch (the cpu phase): the same distributions."""
    def logits(frac):
        x = (rng.standard_normal((n, v)) * 3.0 * (3000.0 if big else 1.0)).astype(np.float32)
        if frac > 0 and v > 1:
            x[rng.random((n, v)) < frac] = -np.inf
        return x

    ignore = -100
    x = logits(neg_inf)
    y = rng.integers(0, v, n).astype(np.int32)
    on_inf = np.isinf(x[np.arange(n), y])
    y[on_inf] = x.argmax(-1)[on_inf]
    y[rng.random(n) < 0.1] = ignore
    vec = lambda: rng.standard_normal(n).astype(np.float32)
    return {"x": x, "y": y, "ignore": ignore, "glp": vec(), "gh": vec(), "xs": logits(neg_inf),
            "gout": rng.standard_normal((n, v)).astype(np.float32), "xp": logits(neg_inf), "xq": logits(0.0),
            "gkl": vec()}


CPU_SHAPES = [(33, 7, 0.7, {}), (64, 1000, 1.0, {}), (9, 4099, 1.0, {}), (48, 32000, 0.9, {}),
              (6, 128256, 1.0, {}), (20, 5000, 1.0, {"big": True}), (7, 65536, 1.0, {"big": True})]


def check_cpu_phase(lib):
    """The CPU kernels against numpy float64 references; needs neither torch nor a GPU."""
    rng = np.random.default_rng(int(time.time() * 1000) & 0x7FFFFFFF)
    for n, v, T, kw in CPU_SHAPES:
        a = numpy_row_inputs(n, v, rng, **kw)
        check_cpu_rows(lib, a, row_references(a, T), T, f"n={n} v={v} T={T}{' big' if kw.get('big') else ''}")


def check_cpu_agreement(lib, cu, gen, dev):
    """The CUDA kernels against the CPU kernels of the same library, same float32 inputs."""
    n, v, T, ignore = 64, 32000, 0.9, -100
    x = make_logits(n, v, gen, dev, neg_inf_frac=0.01)
    y = make_labels(n, v, gen, dev, ignore, 0.1, x)
    glp = torch.randn(n, generator=gen, device=dev)
    gh = torch.randn(n, generator=gen, device=dev)
    xh, yh, glph, ghh = (t.cpu().numpy().copy() for t in (x, y, glp, gh))
    lp_c, ent_c = np.zeros(n, np.float32), np.zeros(n, np.float32)
    s1 = lib.rlhf_logprobs_f32(ptr(xh), ptr(yh), n, v, T, ignore, ptr(lp_c), ptr(ent_c), None)
    lp, ent = cu.logprobs(x, y, T, ignore)
    g_c = np.zeros((n, v), np.float32)
    s2 = lib.rlhf_logprobs_backward_f32(ptr(xh), ptr(yh), ptr(glph), ptr(ghh), None, n, v, T, ignore, ptr(g_c))
    g = cu.logprobs_backward(x, y, glp, gh, T, ignore)
    xq = make_logits(n, v, gen, dev)
    xqh = xq.cpu().numpy().copy()
    kl_c, gp_c = np.zeros(n, np.float32), np.zeros((n, v), np.float32)
    s3 = lib.rlhf_kl_full_f32(ptr(xh), ptr(xqh), None, None, n, v, T, ptr(kl_c), ptr(gp_c), None)
    kl, gp = cu.kl_full(x, xq, None, T)
    st = cu.sync()
    t = lambda a: torch.from_numpy(a).to(dev)
    record_check("cuda vs cpu: logprobs, backward, kl.full n=64 v=32000", [
        compare("logprobs", lp, t(lp_c)), compare("entropy", ent, t(ent_c)),
        compare("gradLogits", g, t(g_c)), compare("kl", kl, t(kl_c), atol=1e-4),
        compare("gradLogitsP", gp, t(gp_c)),
        {"name": "status", "ok": st == 0 and s1 == 0 and s2 == 0 and s3 == 0, "rel": 0.0}], "cpu kernels")


# Losses are float64 on both sides (the CPU's log1p is a float fit: ~1e-8 apart in run 1).
SCALAR_LOSS_TOL = {"rtol": 1e-6, "atol": 1e-7}


def check_preference(lib, cu, gen, dev):
    """pairwise, dpo, ranking: CUDA (device scalars) against the CPU kernels."""
    d = lambda: C.c_double()
    for b in (1, 7, 1000, 5000):
        ch = torch.randn(b, generator=gen, device=dev)
        rj = torch.randn(b, generator=gen, device=dev)
        mg = torch.rand(b, generator=gen, device=dev)
        scal = torch.zeros(2, dtype=torch.float64, device=dev)
        gc, gr = nan_like((b,), dev), nan_like((b,), dev)
        s = lib.rlhf_cuda_pairwise_f32(ptr(ch), ptr(rj), ptr(mg), b, 0.1, 0.01, ptr(gc), ptr(gr), scal.data_ptr(),
                                       scal.data_ptr() + 8, cu.stream)
        st = cu.sync()
        chh, rjh, mgh = (a.cpu().numpy().copy() for a in (ch, rj, mg))
        gch, grh = np.zeros(b, np.float32), np.zeros(b, np.float32)
        loss, acc = d(), d()
        s2 = lib.rlhf_pairwise_f32(ptr(chh), ptr(rjh), ptr(mgh), b, 0.1, 0.01, ptr(gch), ptr(grh), C.byref(loss),
                                   C.byref(acc))
        sc = scal.cpu()
        t = lambda a: torch.from_numpy(a).to(dev)
        record_check(f"pairwise b={b}", [
            compare("gradChosen", gc, t(gch)), compare("gradRejected", gr, t(grh)),
            compare("loss", sc[:1], torch.tensor([loss.value], dtype=torch.float64), **SCALAR_LOSS_TOL),
            compare("accuracy", sc[1:], torch.tensor([acc.value], dtype=torch.float64), rtol=0.0, atol=1e-12),
            {"name": "status", "ok": s == 0 and s2 == 0 and st == 0, "rel": 0.0}], cu.last_launch())
        for lt, lname in ((0, "sigmoid"), (1, "hinge"), (2, "ipo")):
            ins = [torch.randn(b, generator=gen, device=dev) * 5 for _ in range(4)]
            outs = [nan_like((b,), dev) for _ in range(4)]
            s = lib.rlhf_cuda_dpo_f32(*(ptr(a) for a in ins), b, 0.1, lt, 0.05, *(ptr(o) for o in outs),
                                      scal.data_ptr(), scal.data_ptr() + 8, cu.stream)
            st = cu.sync()
            insh = [a.cpu().numpy().copy() for a in ins]
            outsh = [np.zeros(b, np.float32) for _ in range(4)]
            s2 = lib.rlhf_dpo_f32(*(ptr(a) for a in insh), b, 0.1, lt, 0.05, *(ptr(o) for o in outsh), C.byref(loss),
                                  C.byref(acc))
            sc = scal.cpu()
            record_check(f"dpo {lname} b={b}", [
                *(compare(f"out{i}", outs[i], t(outsh[i])) for i in range(4)),
                compare("loss", sc[:1], torch.tensor([loss.value], dtype=torch.float64), **SCALAR_LOSS_TOL),
                compare("accuracy", sc[1:], torch.tensor([acc.value], dtype=torch.float64), rtol=0.0, atol=1e-12),
                {"name": "status", "ok": s == 0 and s2 == 0 and st == 0, "rel": 0.0}], cu.last_launch())
    for b, k in ((1, 2), (16, 4), (300, 6), (2000, 9)):
        rw = torch.randn(b, k, generator=gen, device=dev)
        rk = torch.randint(0, k, (b, k), generator=gen, device=dev, dtype=torch.int32)  # ties
        rk = torch.where(torch.rand(b, k, generator=gen, device=dev) < 0.15, torch.full_like(rk, -1), rk)  # padding
        rw = torch.where(rk < 0, torch.full_like(rw, float("nan")), rw)  # padded slots never leak
        grad = nan_like((b, k), dev)
        scal = torch.zeros(3, dtype=torch.float64, device=dev)
        s = lib.rlhf_cuda_ranking_f32(ptr(rw), ptr(rk), b, k, ptr(grad), scal.data_ptr(), scal.data_ptr() + 8,
                                      scal.data_ptr() + 16, cu.stream)
        st = cu.sync()
        sc = scal.cpu()
        pairs_dev = int(sc[2:].view(torch.int64)[0])
        rwh, rkh = rw.cpu().numpy().copy(), rk.cpu().numpy().copy()
        gh_ = np.zeros((b, k), np.float32)
        loss, acc, pairs = C.c_double(), C.c_double(), C.c_int64()
        s2 = lib.rlhf_ranking_f32(ptr(rwh), ptr(rkh), b, k, ptr(gh_), C.byref(loss), C.byref(acc), C.byref(pairs))
        record_check(f"ranking b={b} k={k}", [
            compare("grad", grad, torch.from_numpy(gh_).to(dev)),
            compare("loss", sc[:1], torch.tensor([loss.value], dtype=torch.float64), **SCALAR_LOSS_TOL),
            compare("accuracy", sc[1:2], torch.tensor([acc.value], dtype=torch.float64), rtol=0.0, atol=1e-12),
            {"name": "pairs", "ok": pairs_dev == pairs.value, "rel": 0.0, "got": pairs_dev, "want": pairs.value},
            {"name": "status", "ok": s == 0 and s2 in (0, 4) and st == 0, "rel": 0.0}], cu.last_launch())


def check_errors(lib, cu, gen, dev):
    """A bad label or rank on the device: no crash, RLHF_ERR_INDEX at sync, other rows still right."""
    n, v = 8, 5000
    x = make_logits(n, v, gen, dev)
    y = make_labels(n, v, gen, dev, -100, 0.0, x)
    y[3] = v  # out of range
    lp, ent = cu.logprobs(x, y, 1.0, -100)
    st = cu.sync()
    st2 = cu.sync()  # the flag is cleared by the first sync
    rlp, _, _, _ = ref_logprobs(x, torch.where(y == v, torch.full_like(y, -100), y), 1.0, -100)
    keep = torch.arange(n, device=dev) != 3
    g = cu.logprobs_backward(x, y, torch.ones(n, device=dev), None, 1.0, -100)
    st3 = cu.sync()
    rk = torch.tensor([[0, 1, 7]], dtype=torch.int32, device=dev)
    scal = torch.zeros(3, dtype=torch.float64, device=dev)
    grad = torch.empty(1, 3, device=dev)
    s = lib.rlhf_cuda_ranking_f32(ptr(torch.randn(1, 3, device=dev)), ptr(rk), 1, 3, ptr(grad), scal.data_ptr(),
                                  scal.data_ptr() + 8, scal.data_ptr() + 16, cu.stream)
    st4 = cu.sync()
    bad_t = lib.rlhf_cuda_logprobs_f32(ptr(x), ptr(y), n, v, 0.0, -100, ptr(lp), ptr(ent), None, cu.stream)
    record_check("errors: bad label / rank -> index at sync; T=0 -> param", [
        {"name": "label index", "ok": st == 2, "rel": 0.0, "got": st},
        {"name": "flag cleared", "ok": st2 == 0, "rel": 0.0, "got": st2},
        {"name": "bad row NaN", "ok": bool(torch.isnan(lp[3])) and bool(torch.isnan(g[3]).all()), "rel": 0.0},
        compare("other rows", lp[keep], rlp[keep]),
        {"name": "backward index", "ok": st3 == 2, "rel": 0.0, "got": st3},
        {"name": "rank index", "ok": s == 0 and st4 == 2, "rel": 0.0, "got": st4},
        {"name": "temperature param", "ok": bad_t == 3, "rel": 0.0, "got": bad_t}], "errors")


def check_buffers(lib, cu, gen):
    """malloc / htod / dtod / dtoh / free round trip through the library's own memory API."""
    a = np.random.default_rng(1).standard_normal(1 << 20).astype(np.float32)
    b = np.zeros_like(a)
    d1, d2 = P(), P()
    ok = lib.rlhf_cuda_malloc(C.byref(d1), a.nbytes) == 0 and lib.rlhf_cuda_malloc(C.byref(d2), a.nbytes) == 0
    ok = ok and lib.rlhf_cuda_memcpy_htod(d1, ptr(a), a.nbytes, cu.stream) == 0
    ok = ok and lib.rlhf_cuda_memcpy_dtod(d2, d1, a.nbytes, cu.stream) == 0
    ok = ok and lib.rlhf_cuda_memcpy_dtoh(ptr(b), d2, a.nbytes, cu.stream) == 0 and cu.sync() == 0
    ok = ok and lib.rlhf_cuda_free(d1) == 0 and lib.rlhf_cuda_free(d2) == 0
    record_check("device buffers: malloc, htod, dtod, dtoh, free", [
        {"name": "round trip", "ok": bool(ok and np.array_equal(a, b)), "rel": 0.0}], "runtime")


# ---- timing ---------------------------------------------------------------------------------------------

def bench(fn, reps, warm=3, inner=5):
    """Median milliseconds per call. Each sample times `inner` back-to-back calls behind a GPU sleep, so
    that the host's launch latency (Python + ctypes) never leaves the GPU idle inside the timed region."""
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    events = []
    for _ in range(reps):
        s = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        try:
            torch.cuda._sleep(2_000_000)  # ~1 ms of queued work before the start event
        except Exception:
            pass
        s.record()
        for _ in range(inner):
            fn()
        e.record()
        events.append((s, e))
    torch.cuda.synchronize()
    ms = [s.elapsed_time(e) / inner for s, e in events]
    return statistics.median(ms), min(ms), max(ms)


def measure_copy(dev, reps):
    nbytes = 1 << 30
    src = torch.randn(nbytes // 4, device=dev)
    dst = torch.empty_like(src)
    med, lo, hi = bench(lambda: dst.copy_(src), reps)
    again, _, _ = bench(lambda: dst.copy_(src), reps)
    bw = 2 * nbytes / (med * 1e-3) / 1e9
    RESULTS["copy"] = {"bytes": 2 * nbytes, "ms": med, "ms_again": again, "min": lo, "max": hi, "GBps": bw}
    log(f"device-to-device copy of 1 GiB: {med:.3f} ms (again {again:.3f}) -> {bw:.0f} GB/s (read + write bytes)")
    del src, dst
    torch.cuda.empty_cache()
    return bw


# Timed layouts: name -> rlhf_cuda_set_row_schedule(max_cluster, cache_rows, threads, unroll, streaming,
# blocks_per_sm, split_rows). "auto" is the library's automatic layout (kAutoLayouts in
# native/src/cuda/rows.cuh); "re-read" is one block per row whose gradient pass re-reads the row from
# global memory (L2); "splitN" splits every row over a cluster of N blocks without a shared-memory copy;
# "cached" keeps each block's part of the row in shared memory (<= 64 KB), "registers" in the registers
# the first pass loaded it into (512 threads x 4 floats x unroll: parts of 8192 or 16384 elements per
# input, so 32000 runs over clusters of 2-4 blocks and 128256 over 8-16; "1024x8": 1024 threads, parts of
# 32768, so a row of 32000 needs no cluster and 128256 a cluster of 4); "ahead" adds a persistent grid
# whose blocks load the next row's part into a second set of registers before writing this row's.
# Run 2 (H200) timed the first nine; run 3 only auto, run2-auto and run 2's fastest per kernel; run 4
# adds the kept layouts with every load of a part in flight (KEPT_VARIANTS) for the [n, v]-output kernels.
TIME_VARIANTS = {
    "auto": (0, 1, 0, 0, -1, 0),
    "re-read,plain": (1, 0, 512, 2, 0, 0),
    "re-read,stream": (1, 0, 512, 2, 1, 0),
    "re-read,stream,u4": (1, 0, 512, 4, 1, 0),
    "re-read,stream,256x4": (1, 0, 256, 4, 1, 0),
    "re-read,stream,2/SM": (1, 0, 512, 2, 1, 2),
    "re-read,stream,1/SM": (1, 0, 512, 2, 1, 1),
    "split4,re-read,stream": (4, 0, 512, 2, 1, 0, 4),
    "split8,re-read,stream": (8, 0, 512, 2, 1, 0, 8),
    "cached,u4": (16, 1, 512, 4, 1, 0),
    "registers,u4": (16, 2, 512, 4, 1, 0),
    "registers,u8": (16, 2, 512, 8, 1, 0),
    "registers,1024x8": (16, 2, 1024, 8, 1, 0),
    "registers,u4,ahead,2/SM": (16, 3, 512, 4, 1, 2),
    "registers,u4,ahead,1/SM": (16, 3, 512, 4, 1, 1),
}
# The re-read layouts move 1.5x the counted bytes of a backward (the row twice, the gradient once) and
# run 2's best of them already moved ~4.6 TB/s of HBM traffic on an H200 (339 us at 4096x32000): only a
# kept row can reach 75 % of copy. Run 2's kept rows (cached, 512 x 2) had 2 steps in flight per thread.
KEPT_VARIANTS = ["cached,u4", "registers,u4", "registers,u8", "registers,1024x8", "registers,u4,ahead,2/SM",
                 "registers,u4,ahead,1/SM"]
# Run 2's automatic layout, per kernel, as explicit schedules (the planner before kAutoLayouts): a block
# per row with 512 threads and 2 steps in flight, or the row cached in shared memory over the smallest
# cluster (at most max_cluster) whose parts fit 64 KB, re-read where that does not fit the multiprocessor.
RUN2_AUTO = {
    "logprobs+entropy fwd": (1, 0, 512, 2, -1, 0),
    "kl.full fwd only": (1, 0, 512, 2, -1, 0),
    "logprobs backward": (2, 1, 0, 0, -1, 0),    # 32000: cached over 2; 128256: re-read
    "kl.full fwd+grad": (4, 1, 0, 0, -1, 0),     # 32000: cached over 4; 128256: re-read
    "logsoftmax fwd": (8, 1, 0, 0, -1, 0),       # cached over 2 / 8
    "logsoftmax backward": (4, 1, 0, 0, -1, 0),  # 32000: cached over 4; 128256: re-read
}
# Run 2's fastest correct variant per kernel and shape (bench/results/gpu/h200-check-run2.log), which
# the new auto should now launch: same layout, same time within noise.
RUN2_BEST = {
    ("logprobs+entropy fwd", "4096x32000"): "re-read,stream,256x4",
    ("logprobs backward", "4096x32000"): "re-read,stream,u4",
    ("kl.full fwd+grad", "4096x32000"): "re-read,stream,u4",
    ("kl.full fwd only", "4096x32000"): "re-read,stream,256x4",
    ("logsoftmax fwd", "4096x32000"): "re-read,stream,u4",
    ("logsoftmax backward", "4096x32000"): "run2-auto",
    ("logprobs+entropy fwd", "1024x128256"): "re-read,stream,u4",
    ("logprobs backward", "1024x128256"): "re-read,stream,u4",
    ("kl.full fwd+grad", "1024x128256"): "split8,re-read,stream",
    ("kl.full fwd only", "1024x128256"): "re-read,stream,256x4",
    ("logsoftmax fwd", "1024x128256"): "split8,re-read,stream",
    ("logsoftmax backward", "1024x128256"): "split8,re-read,stream",
}


# The backward from the forward's saved row statistics has no statistics pass (nothing to keep): a
# stream, timed with the block shapes of the re-read layouts.
STREAM_VARIANTS = {name: ["auto", "re-read,stream", "re-read,stream,256x4", "re-read,plain"]
                   for name in ("logprobs backward (rowStats)", "kl.full grad (rowStats)")}


def timed_variants(kernel, shape, writes):
    """(name, schedule) pairs to time for one kernel and shape: auto, run2-auto, run 2's fastest and, for
    kernels with an [n, v] output, the kept layouts."""
    if kernel in STREAM_VARIANTS:
        return [(name, TIME_VARIANTS[name]) for name in STREAM_VARIANTS[kernel]]
    names = ["auto", "run2-auto"]
    best = RUN2_BEST.get((kernel, shape))
    if best and best not in names:
        names.append(best)
    if writes:
        names += KEPT_VARIANTS
    return [(name, RUN2_AUTO[kernel] if name == "run2-auto" else TIME_VARIANTS[name]) for name in names]


def time_kernels(cu, gen, dev, copy_bw, reps, shapes):
    for (n, v) in shapes:
        x = make_logits(n, v, gen, dev)
        y = make_labels(n, v, gen, dev, -100, 0.0)
        yl = y.long()[:, None]
        glp = torch.randn(n, generator=gen, device=dev)
        gh = torch.randn(n, generator=gen, device=dev)
        xq = make_logits(n, v, gen, dev)
        gkl = torch.randn(n, generator=gen, device=dev)
        lp, ent = torch.empty(n, device=dev), torch.empty(n, device=dev)
        stats = torch.empty(n, 3, device=dev)
        cu.logprobs(x, y, 1.0, -100, out=(lp, ent), stats=stats)  # the forward's row statistics, saved once
        kl_stats = torch.empty(n, 5, device=dev)
        cu.kl_full(x, xq, None, 1.0, grad=False, out=(torch.empty(n, device=dev), None), stats=kl_stats)
        g = torch.empty(n, v, device=dev)
        kl = torch.empty(n, device=dev)
        nv4 = n * v * 4

        def torch_fwd():
            lsm = torch.log_softmax(x, -1)
            lsm.gather(1, yl)
            -(lsm.exp() * lsm).sum(-1)

        def torch_bwd():
            lsm = torch.log_softmax(x, -1)
            p = lsm.exp()
            h = -(p * lsm).sum(-1, keepdim=True)
            grad = -glp[:, None] * p
            grad.scatter_add_(1, yl, glp[:, None])
            grad -= gh[:, None] * p * (lsm + h)

        def torch_kl():
            lp_ = torch.log_softmax(x, -1)
            lq_ = torch.log_softmax(xq, -1)
            p = lp_.exp()
            d = lp_ - lq_
            k = (p * d).sum(-1, keepdim=True)
            gkl[:, None] * p * (d - k)

        def torch_kl_fwd():
            lp_ = torch.log_softmax(x, -1)
            lq_ = torch.log_softmax(xq, -1)
            (lp_.exp() * (lp_ - lq_)).sum(-1)

        def torch_lsm():
            torch.log_softmax(x, -1)

        def torch_lsm_bwd():
            torch._log_softmax_backward_data(g, lsm_out, -1, torch.float32)

        lsm_out = torch.log_softmax(x, -1)
        ref_lp, ref_ent = ref_logprobs(x, y, 1.0, -100)[:2]
        ref_kl_val, ref_kl_grad = ref_kl(x, xq, gkl, 1.0)
        kernels = [
            ("logprobs+entropy fwd", nv4, lambda: cu.logprobs(x, y, 1.0, -100, out=(lp, ent)), torch_fwd, 0.85, False,
             lambda: every(compare("logprobs", lp, ref_lp), compare("entropy", ent, ref_ent))),
            ("logprobs backward", 2 * nv4, lambda: cu.logprobs_backward(x, y, glp, gh, 1.0, -100, out=g), torch_bwd,
             0.75, True, lambda: compare("grad", g, ref_logprobs_backward(x, y, glp, gh, 1.0, -100))),
            ("logprobs backward (rowStats)", 2 * nv4,
             lambda: cu.logprobs_backward(x, y, glp, gh, 1.0, -100, out=g, stats=stats), torch_bwd, 0.75, True,
             lambda: compare("grad", g, ref_logprobs_backward(x, y, glp, gh, 1.0, -100))),
            ("kl.full fwd+grad", 3 * nv4, lambda: cu.kl_full(x, xq, gkl, 1.0, out=(kl, g)), torch_kl, 0.70, True,
             lambda: every(compare("kl", kl, ref_kl_val, atol=1e-4), compare("grad", g, ref_kl_grad))),
            ("kl.full grad (rowStats)", 3 * nv4, lambda: cu.kl_full(x, xq, gkl, 1.0, out=(kl, g), saved=kl_stats),
             torch_kl, 0.70, True,
             lambda: every(compare("kl", kl, ref_kl_val, atol=1e-4), compare("grad", g, ref_kl_grad))),
            ("kl.full fwd only", 2 * nv4, lambda: cu.kl_full(x, xq, None, 1.0, grad=False, out=(kl, None)),
             torch_kl_fwd, None, False, lambda: compare("kl", kl, ref_kl(x, xq, None, 1.0)[0], atol=1e-4)),
            ("logsoftmax fwd", 2 * nv4, lambda: cu.logsoftmax(x, 1.0, out=g), torch_lsm, None, True,
             lambda: compare("lsm", g, ref_logsoftmax(x, 1.0))),
            ("logsoftmax backward", 3 * nv4, lambda: cu.logsoftmax_backward(x, xq, 1.0, out=g), torch_lsm_bwd, None, True,
             lambda: compare("grad", g, ref_logsoftmax_backward(x, xq, 1.0))),
        ]
        for name, nbytes, fn, tfn, target, writes, verify in kernels:  # writes: an [n,v] output
            try:
                t_ms, _, _ = bench(tfn, reps)
            except Exception as e:  # a baseline that does not run is reported, not fatal
                log(f"  torch baseline for {name} failed: {e}")
                t_ms = float("nan")
            for vname, schedule in timed_variants(name, f"{n}x{v}", writes):
                cu.tuning(*schedule)
                try:
                    for out in (g, lp, ent, kl):  # every output the check reads: a kernel that writes nothing fails
                        out.fill_(float("nan"))
                    fn()
                    st = cu.sync()
                    launch = cu.last_launch()
                    chk = verify()
                    chk["ok"] = chk["ok"] and st == 0
                    med, lo, hi = bench(fn, reps)
                    med2, _, _ = bench(fn, reps)
                    chk["ok"] = chk["ok"] and cu.sync() == 0  # an error flag raised while timing is this variant's
                except Exception as e:
                    log(f"  {name} {n}x{v} [{vname}] failed: {e}")
                    RESULTS["failures"].append({"case": f"timing {name} {n}x{v} {vname}", "error": str(e)})
                    continue
                bw = nbytes / (med * 1e-3) / 1e9
                row = {"kernel": name, "shape": f"{n}x{v}", "variant": vname, "launch": launch, "ms": med,
                       "ms_again": med2, "min": lo, "max": hi, "bytes": nbytes, "GBps": bw, "of_copy": bw / copy_bw,
                       "torch_ms": t_ms, "speedup_vs_torch": t_ms / med, "target_of_copy": target,
                       "correct": chk["ok"], "rel": chk["rel"]}
                RESULTS["timings"].append(row)
                if not chk["ok"]:
                    RESULTS["failures"].append({"case": f"timing {name} {n}x{v} {vname}", "check": chk})
                log(f"  {name:<22} {n}x{v:<7} {vname:<22} {med*1e3:9.1f} us ({med2*1e3:.1f})  {bw:7.0f} GB/s "
                    f"{100*bw/copy_bw:5.1f}% of copy  torch {t_ms*1e3:9.1f} us  x{t_ms/med:4.2f}  "
                    f"{'ok' if chk['ok'] else 'WRONG'} rel {chk['rel']:.1e}  ({launch})")
            cu.tuning(0, 1)
        del x, xq, g, lsm_out
        torch.cuda.empty_cache()


# ---- report ---------------------------------------------------------------------------------------------

def slower(r):
    """A timing's slower of its two medians: what the summaries compare, robust to one noisy run."""
    return max(r["ms"], r.get("ms_again", r["ms"]))


def table():
    lines = []
    copy = RESULTS["copy"]
    lines.append(f"GPU: {RESULTS['device']}")
    if copy:
        lines.append(f"device-to-device copy: {copy['GBps']:.0f} GB/s (1 GiB, read+write bytes, median)")
    for label, mine in (("CUDA", lambda c: c["launch"] != "cpu"), ("CPU (librlhf.so vs float64)",
                                                                    lambda c: c["launch"] == "cpu")):
        checks = [c for c in RESULTS["checks"] if mine(c)]
        lines.append(f"correctness, {label}: {sum(1 for c in checks if c['ok'])}/{len(checks)} checks passed")
    lines.append("")
    head = (f"| {'kernel':<22} | {'shape':<11} | {'variant':<22} | {'us':>8} | {'again':>8} | {'GB/s':>6} | "
            f"{'% copy':>8} | {'target':>6} | {'torch us':>9} | {'vs torch':>8} | ok |")
    lines.append(head)
    lines.append("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in RESULTS["timings"]:
        tgt = f"{100*r['target_of_copy']:.0f}%" if r["target_of_copy"] else "-"
        met = ""
        if r["target_of_copy"] and r["variant"] == "auto":
            met = " <" if r["of_copy"] < r["target_of_copy"] else ""
        lines.append(f"| {r['kernel']:<22} | {r['shape']:<11} | {r['variant']:<22} | {r['ms']*1e3:8.1f} | "
                     f"{r.get('ms_again', r['ms'])*1e3:8.1f} | {r['GBps']:6.0f} | {100*r['of_copy']:5.1f}%{met:2} | "
                     f"{tgt:>6} | {r['torch_ms']*1e3:9.1f} | {r['speedup_vs_torch']:7.2f}x | "
                     f"{'y' if r['correct'] else 'N'}  |")
    lines.append("")
    # The decision the next change needs: per kernel and shape, the fastest correct variant and auto's gap.
    best = {}
    for r in RESULTS["timings"]:
        if not r["correct"]:
            continue
        key = (r["kernel"], r["shape"])
        t = slower(r)
        if key not in best or t < best[key][1]:
            best[key] = (r["variant"], t)
    auto = {(r["kernel"], r["shape"]): r for r in RESULTS["timings"] if r["variant"] == "auto"}
    run2 = {(r["kernel"], r["shape"]): slower(r) for r in RESULTS["timings"] if r["variant"] == "run2-auto"}
    if best:
        lines.append("fastest correct variant (slower of its two timings), auto's time relative to it, auto's gain "
                     "over run 2's auto (run2-auto time / auto time), and the layout auto launched:")
        for (k, shape), (vname, t) in best.items():
            a = auto.get((k, shape))
            r2 = run2.get((k, shape))
            ta = slower(a) if a else float("nan")
            lines.append(f"  {k:<22} {shape:<11} {vname:<22} {t*1e3:8.1f} us   auto x{ta / t:.2f}   "
                         f"gain over run2-auto x{(r2 / ta if r2 else float('nan')):.2f}   ({a['launch'] if a else '-'})")
        lines.append("")
        lines += promotion_candidates(auto)
    lines.append("bytes counted: fwd N·V·4 read; logprobs backward read+write N·V·4 each; kl.full+grad 2 reads + "
                 "1 write; kl fwd 2 reads; logsoftmax 1 read + 1 write; its backward 2 reads + 1 write.")
    lines.append("'<' marks an auto-variant row under its target. torch = PyTorch eager, same GPU, same run. "
                 "Variants: TIME_VARIANTS, RUN2_AUTO, RUN2_BEST in bench/gpu/harness.py.")
    if RESULTS["failures"]:
        lines.append(f"FAILURES: {len(RESULTS['failures'])} (see results.json)")
    return "\n".join(lines)


def promotion_candidates(auto):
    """The decision rule of bench/gpu/NOTES.md, applied: a correct variant that beat auto by more than 5 %
    (the slower of its two timings against auto's slower one) and passed its rows:<variant> phase on
    every shape is a candidate for kAutoLayouts (rows.cuh) for that op and row range. A phase that raised
    part way, or checked fewer shapes than ROW_SHAPES has for it, has not passed."""
    checked, shapes = {}, {}
    for c in RESULTS["checks"]:
        m = re.search(r"(n=\d+ v=\d+ T=[^\[]*) \[([^\]]+)\]$", c["case"])
        if m:
            checked.setdefault(m.group(2), []).append(c["ok"])
            shapes.setdefault(m.group(2), set()).add(m.group(1))
    crashed = {f["case"][len("rows:"):-len(": exception")] for f in RESULTS["failures"]
               if f["case"].startswith("rows:") and f["case"].endswith(": exception")}
    variant_shapes = sum(1 for (_, v, _, _) in ROW_SHAPES if v > 1024)
    lines = []
    for r in sorted(RESULTS["timings"], key=lambda r: (r["kernel"], r["shape"], slower(r))):
        a = auto.get((r["kernel"], r["shape"]))
        if r["variant"] == "auto" or not r["correct"] or not a or slower(r) * 1.05 >= slower(a):
            continue
        oks = checked.get(r["variant"])
        passed = (oks and all(oks) and r["variant"] not in crashed
                  and len(shapes[r["variant"]]) >= variant_shapes)
        verdict = ("candidate" if passed else
                   "rows phase " + ("failed or incomplete" if oks else "not run") + ": not a candidate yet")
        lines.append(f"  {r['kernel']:<22} {r['shape']:<11} {r['variant']:<24} {slower(r)*1e3:8.1f} us  "
                     f"auto x{slower(a) / slower(r):.2f}  {verdict}")
    if lines:
        lines.insert(0, "beat auto by > 5 % (NOTES.md's rule; a candidate goes into kAutoLayouts in rows.cuh):")
        lines.append("")
    return lines


# Correctness layouts (rlhf_cuda_set_row_schedule arguments, as TIME_VARIANTS). The persistent grids
# ("/SM") give each block several rows: the double-buffered per-row slots, the cached row reused.
ROW_VARIANTS = {"auto": (0, 1), "no-split,no-cache": (1, 0), "split,no-cache": (8, 0), "cluster<=16": (16, 1),
                "cache,no-split": (1, 1), "re-read,stream,u4,1/SM": (1, 0, 512, 4, 1, 1),
                "re-read,stream,256x4": (1, 0, 256, 4, 1, 0), "cluster<=8,cached,1/SM": (8, 1, 0, 0, -1, 1),
                "split4,re-read,stream": (4, 0, 512, 2, 1, 0, 4),
                **{name: TIME_VARIANTS[name] for name in KEPT_VARIANTS}}
ROW_SHAPES = [(5, 1, 1.0, {}), (33, 7, 0.7, {}), (17, 37, 1.3, {}), (64, 1000, 1.0, {}), (40, 1024, 0.8, {}),
              (40, 1025, 0.8, {}), (9, 4099, 1.0, {}), (300, 4096, 1.0, {"misalign": True}),
              (48, 32000, 0.9, {}), (3, 32003, 1.0, {}), (6, 128256, 1.0, {}), (200, 128256, 0.8, {}),
              (20, 5000, 1.0, {"big": True}), (7, 65536, 1.0, {"big": True})]


def run_phase(phase, lib, cu, gen, dev, reps):
    steps = []
    if phase == "basic":
        steps = [lambda: check_buffers(lib, cu, gen), lambda: check_errors(lib, cu, gen, dev),
                 lambda: check_cpu_agreement(lib, cu, gen, dev), lambda: check_preference(lib, cu, gen, dev)]
    elif phase.startswith("rows:"):
        vname = phase[5:]
        schedule = ROW_VARIANTS[vname]
        for (n, v, T, kw) in ROW_SHAPES:
            if vname != "auto" and v <= 1024:
                continue  # warp rows have no variants
            cpu_lib = lib if vname == "auto" else None  # the CPU kernels once, next to the automatic layout
            steps.append(lambda n=n, v=v, T=T, kw=kw: (cu.tuning(*schedule),
                                                       check_rows(cu, n, v, T, vname, gen, dev, lib=cpu_lib, **kw)))
    elif phase == "time":
        def timing():
            copy_bw = measure_copy(dev, reps)
            time_kernels(cu, gen, dev, copy_bw, reps, [(4096, 32000), (1024, 128256)])
            RESULTS["copy_end"] = measure_copy(dev, reps)
        steps = [timing]
    else:
        raise SystemExit(f"unknown phase {phase}")
    for step in steps:
        try:
            step()
        except Exception as e:
            traceback.print_exc()
            RESULTS["failures"].append({"case": f"{phase}: exception", "error": repr(e)})
        cu.tuning(0, 1)
        torch.cuda.empty_cache()


def report(out, parts_dir):
    """Merges the part-*.json files of the phases (in parts_dir) and prints the table."""
    parts = sorted(f for f in os.listdir(parts_dir) if f.startswith("part-") and f.endswith(".json"))
    for f in parts:
        with open(os.path.join(parts_dir, f)) as fh:
            part = json.load(fh)
        for key in ("checks", "timings", "failures"):
            RESULTS[key].extend(part.get(key, []))
        for key in ("device", "copy", "copy_end", "torch"):
            if part.get(key) is not None:
                RESULTS[key] = part[key]
    RESULTS["phases"] = parts
    text = table()
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump(RESULTS, fh, indent=1, default=str)
    with open(os.path.join(out, "results.md"), "w") as fh:
        fh.write(text + "\n")
    log(text)
    if not RESULTS["checks"]:
        log("FAILED: no phase recorded a check (see harness.log)")
    return 1 if RESULTS["failures"] or not RESULTS["checks"] else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", help="path of librlhf.so")
    ap.add_argument("--out", required=True, help="folder for results.json and results.md")
    ap.add_argument("--parts", help="folder for part-<phase>.json (default: --out)")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--phase", required=True, help="basic | rows:<variant> | time | cpu | report")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    parts_dir = args.parts or args.out
    os.makedirs(parts_dir, exist_ok=True)
    if args.phase == "report":
        return report(args.out, parts_dir)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", args.phase.replace(":", "-").replace("<=", "le").replace("/", "per"))
    if args.phase == "cpu":  # librlhf.so's CPU kernels against numpy float64: no torch, no GPU
        t0 = time.time()
        log("== cpu: the CPU kernels of librlhf.so against float64 (numpy) ==")
        try:
            check_cpu_phase(load(args.lib))
        except Exception as e:
            traceback.print_exc()
            RESULTS["failures"].append({"case": "cpu: exception", "error": repr(e)})
        log(f"== cpu took {time.time() - t0:.1f} s ==")
        with open(os.path.join(parts_dir, f"part-{safe}.json"), "w") as fh:
            json.dump(RESULTS, fh, indent=1, default=str)
        return 1 if RESULTS["failures"] else 0
    if torch is None:
        raise SystemExit("this phase needs PyTorch (python3 -c 'import torch' failed)")
    lib = load(args.lib)
    reason = C.create_string_buffer(512)
    if not lib.rlhf_cuda_available(reason, 512):
        log(f"CUDA unavailable: {reason.value.decode()}")
        RESULTS["failures"].append({"case": "available", "error": reason.value.decode()})
    else:
        name = C.create_string_buffer(256)
        lib.rlhf_cuda_device_name(name, 256)
        RESULTS["device"] = name.value.decode()
        RESULTS["torch"] = torch.__version__
        log(f"== {args.phase} on {RESULTS['device']}; torch {torch.__version__} ==")
        dev = torch.device("cuda")
        cu = Cuda(lib)
        gen = torch.Generator(device=dev)
        gen.manual_seed(int(time.time() * 1000) & 0x7FFFFFFF)  # fresh inputs every run
        t0 = time.time()
        run_phase(args.phase, lib, cu, gen, dev, args.reps)
        log(f"== {args.phase} took {time.time() - t0:.1f} s ==")
    with open(os.path.join(parts_dir, f"part-{safe}.json"), "w") as fh:
        json.dump(RESULTS, fh, indent=1, default=str)
    return 1 if RESULTS["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
