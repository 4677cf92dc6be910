#!/usr/bin/env python3
"""GPU check of the rlhf CUDA kernels, driven through the C ABI of librlhf.so with ctypes.

1. correctness: every CUDA kernel against a float64 PyTorch reference (fresh random inputs, -inf
   logits, ignored rows, temperature != 1, odd and tiny vocabularies, misaligned rows, several row
   layouts), outputs poisoned with NaN first so that an unwritten element fails; the CPU kernels of
   the same library on the same inputs; in-place backward; a bad label reported as RLHF_ERR_INDEX.
2. timing: each kernel (median of CUDA-event timings after warm-up) against a device-to-device copy
   measured in the same run, and against PyTorch eager doing the same computation.
3. one table on stdout; results.json and results.md in --out.

Run by bench/gpu/check.sh; needs python3 with torch (CUDA) and numpy.
"""
import argparse
import ctypes as C
import json
import math
import os
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
F32 = C.c_float
I32 = C.c_int32

STATUS = ["ok", "shape", "index", "param", "empty", "unavailable", "device"]
RESULTS = {"device": None, "copy": None, "checks": [], "timings": [], "failures": []}


def log(*a):
    print(*a, flush=True)


# ---- the library ---------------------------------------------------------------------------------

def load(path):
    lib = C.CDLL(path)
    sig = {
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
        "rlhf_cuda_malloc": (C.c_int, [C.POINTER(P), C.c_size_t]),
        "rlhf_cuda_free": (C.c_int, [P]),
        "rlhf_cuda_memcpy_htod": (C.c_int, [P, P, C.c_size_t, P]),
        "rlhf_cuda_memcpy_dtoh": (C.c_int, [P, P, C.c_size_t, P]),
        "rlhf_cuda_memcpy_dtod": (C.c_int, [P, P, C.c_size_t, P]),
        "rlhf_cuda_logprobs_f32": (C.c_int, [P, P, I64, I64, F32, I32, P, P, P]),
        "rlhf_cuda_logprobs_backward_f32": (C.c_int, [P, P, P, P, I64, I64, F32, I32, P, P]),
        "rlhf_cuda_logsoftmax_f32": (C.c_int, [P, I64, I64, F32, P, P]),
        "rlhf_cuda_logsoftmax_backward_f32": (C.c_int, [P, P, I64, I64, F32, P, P]),
        "rlhf_cuda_kl_full_f32": (C.c_int, [P, P, P, I64, I64, F32, P, P, P]),
        "rlhf_cuda_pairwise_f32": (C.c_int, [P, P, P, I64, F32, F32, P, P, P, P, P]),
        "rlhf_cuda_ranking_f32": (C.c_int, [P, P, I64, I64, P, P, P, P, P]),
        "rlhf_cuda_dpo_f32": (C.c_int, [P, P, P, P, I64, F32, C.c_int, F32, P, P, P, P, P, P, P]),
        "rlhf_logprobs_f32": (C.c_int, [P, P, I64, I64, F32, I32, P, P]),
        "rlhf_logprobs_backward_f32": (C.c_int, [P, P, P, P, I64, I64, F32, I32, P]),
        "rlhf_logsoftmax_f32": (C.c_int, [P, I64, I64, F32, P]),
        "rlhf_logsoftmax_backward_f32": (C.c_int, [P, P, I64, I64, F32, P]),
        "rlhf_kl_full_f32": (C.c_int, [P, P, P, I64, I64, F32, P, P]),
        "rlhf_pairwise_f32": (C.c_int, [P, P, P, I64, F32, F32, P, P, P, P]),
        "rlhf_ranking_f32": (C.c_int, [P, P, I64, I64, P, P, P, P]),
        "rlhf_dpo_f32": (C.c_int, [P, P, P, P, I64, F32, C.c_int, F32, P, P, P, P, P, P]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
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

    def tuning(self, max_cluster, cache):
        self.lib.rlhf_cuda_set_row_tuning(max_cluster, cache)

    def last_launch(self):
        return self.lib.rlhf_cuda_last_launch().decode()

    # Each op: device tensors in, device tensors out (allocated here unless given).
    def logprobs(self, x, y, T, ignore, out=None):
        n, v = x.shape
        lp, ent = out if out else (torch.empty(n, device=x.device), torch.empty(n, device=x.device))
        self.expect(self.lib.rlhf_cuda_logprobs_f32(ptr(x), ptr(y), n, v, T, ignore, ptr(lp), ptr(ent), self.stream),
                    "logprobs")
        return lp, ent

    def logprobs_backward(self, x, y, glp, gh, T, ignore, out=None, n=None, v=None):
        n, v = x.shape if n is None else (n, v)
        g = torch.empty(n, v, device=x.device) if out is None else out
        self.expect(self.lib.rlhf_cuda_logprobs_backward_f32(ptr(x), ptr(y), ptr(glp), ptr(gh), n, v, T, ignore,
                                                             ptr(g), self.stream), "logprobs_backward")
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

    def kl_full(self, xp, xq, gkl, T, grad=True, out=None):
        n, v = xp.shape
        if out is None:
            kl = torch.empty(n, device=xp.device)
            gp = torch.empty(n, v, device=xp.device) if grad else None
        else:
            kl, gp = out
        self.expect(self.lib.rlhf_cuda_kl_full_f32(ptr(xp), ptr(xq), ptr(gkl), n, v, T, ptr(kl), ptr(gp), self.stream),
                    "kl_full")
        return kl, gp


# ---- float64 references ----------------------------------------------------------------------------

def where0(cond, x):
    return torch.where(cond, x, torch.zeros((), dtype=x.dtype, device=x.device))


def ref_logprobs(x, y, T, ignore):
    z = x.double() / T
    lsm = torch.log_softmax(z, -1)
    p = lsm.exp()
    active = y != ignore
    yy = torch.where(active, y, torch.zeros_like(y)).long()
    lp = lsm.gather(1, yy[:, None])[:, 0]
    ent = -where0(p > 0, p * lsm).sum(-1)
    return where0(active, lp), where0(active, ent), lsm, p


def ref_logprobs_backward(x, y, glp, gh, T, ignore):
    _, ent, lsm, p = ref_logprobs(x, y, T, ignore)
    active = (y != ignore)
    yy = torch.where(active, y, torch.zeros_like(y)).long()
    onehot = torch.zeros_like(p).scatter_(1, yy[:, None], 1.0)
    g = glp.double()[:, None] * (onehot - p)
    if gh is not None:
        g = g - gh.double()[:, None] * where0(p > 0, p * (lsm + ent[:, None]))
    return where0(active[:, None], g / T)


def ref_logsoftmax(x, T):
    return torch.log_softmax(x.double() / T, -1)


def ref_logsoftmax_backward(x, g, T):
    p = torch.softmax(x.double() / T, -1)
    gd = g.double()
    return (gd - p * gd.sum(-1, keepdim=True)) / T


def ref_kl(xp, xq, gkl, T):
    lp = torch.log_softmax(xp.double() / T, -1)
    lq = torch.log_softmax(xq.double() / T, -1)
    p = lp.exp()
    kl = where0(p > 0, p * (lp - lq)).sum(-1)
    scale = (gkl.double() if gkl is not None else torch.ones_like(kl)) / T
    grad = scale[:, None] * where0(p > 0, p * (lp - lq - kl[:, None]))
    return kl, grad


# ---- comparison ---------------------------------------------------------------------------------------

def compare(name, got, ref, rtol=1e-4, atol=2e-5, rel_limit=2e-5):
    """‖got − ref‖/‖ref‖ over the finite reference entries, every element within atol + rtol·|ref|,
    and non-finite references matched exactly (NaN never passes where the reference is finite)."""
    g = got.double()
    r = ref.double()
    finite = torch.isfinite(r)
    gf, rf = g[finite], r[finite]
    diff = (gf - rf).abs()
    bad_finite = int((~torch.isfinite(gf)).sum())
    rel = float(diff.norm() / rf.norm().clamp_min(1e-300)) if rf.numel() else 0.0
    over = int((diff > atol + rtol * rf.abs()).sum()) if rf.numel() else 0
    nonfinite_ok = bool(torch.equal(g[~finite].nan_to_num(posinf=1e308, neginf=-1e308, nan=7.0),
                                    r[~finite].nan_to_num(posinf=1e308, neginf=-1e308, nan=7.0)))
    maxabs = float(diff.max()) if diff.numel() else 0.0
    ok = bad_finite == 0 and over == 0 and rel <= rel_limit and nonfinite_ok
    return {"name": name, "ok": ok, "rel": rel, "maxabs": maxabs, "over_tol": over, "nan_where_finite": bad_finite,
            "nonfinite_match": nonfinite_ok}


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

def check_rows(cu, n, v, T, variant, gen, dev, neg_inf=0.01, big=False, misalign=False):
    """All five row kernels on one shape; returns nothing, records results."""
    ignore = -100
    tag = f"n={n} v={v} T={T}{' big' if big else ''}{' misaligned' if misalign else ''} [{variant}]"

    def logits(count=1):
        xs = []
        for _ in range(count):
            x = make_logits(n, v, gen, dev, neg_inf_frac=neg_inf, big=big)
            if misalign:  # rows that start 4 bytes after a 16-byte boundary: the scalar path
                buf = torch.empty(n * v + 1, device=dev)
                buf[1:] = x.reshape(-1)
                x = buf[1:].view(n, v)
            xs.append(x)
        return xs if count > 1 else xs[0]

    x = logits()
    y = make_labels(n, v, gen, dev, ignore, 0.1, x)
    # logprobs
    lp, ent = nan_like((n,), dev), nan_like((n,), dev)
    cu.logprobs(x, y, T, ignore, out=(lp, ent))
    st = cu.sync()
    launch = cu.last_launch()
    rlp, rent, _, _ = ref_logprobs(x, y, T, ignore)
    record_check(f"logprobs {tag}", [compare("logprobs", lp, rlp), compare("entropy", ent, rent),
                                     {"name": "status", "ok": st == 0, "rel": 0.0}], launch)
    # logprobs backward (with and without the entropy gradient), then in place
    glp = torch.randn(n, generator=gen, device=dev)
    gh = torch.randn(n, generator=gen, device=dev)
    for with_h in (True, False):
        g = nan_like((n, v), dev)
        cu.logprobs_backward(x, y, glp, gh if with_h else None, T, ignore, out=g)
        st = cu.sync()
        launch = cu.last_launch()
        ref = ref_logprobs_backward(x, y, glp, gh if with_h else None, T, ignore)
        record_check(f"logprobs.backward{' +H' if with_h else ''} {tag}",
                     [compare("gradLogits", g, ref), {"name": "status", "ok": st == 0, "rel": 0.0}], launch)
    ref = ref_logprobs_backward(x, y, glp, gh, T, ignore)
    xin = x.clone() if not misalign else x  # misaligned x is already a private buffer
    cu.logprobs_backward(xin, y, glp, gh, T, ignore, out=xin)
    st = cu.sync()
    record_check(f"logprobs.backward in-place {tag}",
                 [compare("gradLogits", xin, ref), {"name": "status", "ok": st == 0, "rel": 0.0}], cu.last_launch())
    # logsoftmax and its backward
    x = logits()
    o = nan_like((n, v), dev)
    cu.logsoftmax(x, T, out=o)
    st = cu.sync()
    record_check(f"logsoftmax {tag}", [compare("logsoftmax", o, ref_logsoftmax(x, T)),
                                       {"name": "status", "ok": st == 0, "rel": 0.0}], cu.last_launch())
    gout = torch.randn(n, v, generator=gen, device=dev)
    o = nan_like((n, v), dev)
    cu.logsoftmax_backward(x, gout, T, out=o)
    st = cu.sync()
    record_check(f"logsoftmax.backward {tag}", [compare("gradLogits", o, ref_logsoftmax_backward(x, gout, T)),
                                                {"name": "status", "ok": st == 0, "rel": 0.0}], cu.last_launch())
    # kl.full: q has no -inf (log q = -inf where p > 0 would make kl infinite)
    xp = logits()
    xq = make_logits(n, v, gen, dev, big=big)
    if misalign:
        buf = torch.empty(n * v + 1, device=dev)
        buf[1:] = xq.reshape(-1)
        xq = buf[1:].view(n, v)
    gkl = torch.randn(n, generator=gen, device=dev)
    for with_grad, gk in ((True, gkl), (True, None), (False, None)):
        kl = nan_like((n,), dev)
        gp = nan_like((n, v), dev) if with_grad else None
        cu.kl_full(xp, xq, gk, T, grad=with_grad, out=(kl, gp))
        st = cu.sync()
        rkl, rgp = ref_kl(xp, xq, gk, T)
        outs = [compare("kl", kl, rkl, atol=1e-4), {"name": "status", "ok": st == 0, "rel": 0.0}]
        if with_grad:
            outs.append(compare("gradLogitsP", gp, rgp))
        label = "kl.full" + (" +grad" if with_grad else " fwd") + (" gradKl" if gk is not None else "")
        record_check(f"{label} {tag}", outs, cu.last_launch())


def check_cpu_agreement(lib, cu, gen, dev):
    """The CUDA kernels against the CPU kernels of the same library, same float32 inputs."""
    n, v, T, ignore = 64, 32000, 0.9, -100
    x = make_logits(n, v, gen, dev, neg_inf_frac=0.01)
    y = make_labels(n, v, gen, dev, ignore, 0.1, x)
    glp = torch.randn(n, generator=gen, device=dev)
    gh = torch.randn(n, generator=gen, device=dev)
    xh, yh, glph, ghh = (t.cpu().numpy().copy() for t in (x, y, glp, gh))
    lp_c, ent_c = np.zeros(n, np.float32), np.zeros(n, np.float32)
    s1 = lib.rlhf_logprobs_f32(ptr(xh), ptr(yh), n, v, T, ignore, ptr(lp_c), ptr(ent_c))
    lp, ent = cu.logprobs(x, y, T, ignore)
    g_c = np.zeros((n, v), np.float32)
    s2 = lib.rlhf_logprobs_backward_f32(ptr(xh), ptr(yh), ptr(glph), ptr(ghh), n, v, T, ignore, ptr(g_c))
    g = cu.logprobs_backward(x, y, glp, gh, T, ignore)
    xq = make_logits(n, v, gen, dev)
    xqh = xq.cpu().numpy().copy()
    kl_c, gp_c = np.zeros(n, np.float32), np.zeros((n, v), np.float32)
    s3 = lib.rlhf_kl_full_f32(ptr(xh), ptr(xqh), None, n, v, T, ptr(kl_c), ptr(gp_c))
    kl, gp = cu.kl_full(x, xq, None, T)
    st = cu.sync()
    t = lambda a: torch.from_numpy(a).to(dev)
    record_check("cuda vs cpu: logprobs, backward, kl.full n=64 v=32000", [
        compare("logprobs", lp, t(lp_c), rel_limit=5e-5), compare("entropy", ent, t(ent_c), rel_limit=5e-5),
        compare("gradLogits", g, t(g_c), rel_limit=5e-5), compare("kl", kl, t(kl_c), atol=1e-4, rel_limit=5e-5),
        compare("gradLogitsP", gp, t(gp_c), rel_limit=5e-5),
        {"name": "status", "ok": st == 0 and s1 == 0 and s2 == 0 and s3 == 0, "rel": 0.0}], "cpu kernels")


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
            compare("loss", sc[:1], torch.tensor([loss.value], dtype=torch.float64), rel_limit=1e-9),
            compare("accuracy", sc[1:], torch.tensor([acc.value], dtype=torch.float64), rel_limit=1e-12),
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
                compare("loss", sc[:1], torch.tensor([loss.value], dtype=torch.float64), rel_limit=1e-9),
                compare("accuracy", sc[1:], torch.tensor([acc.value], dtype=torch.float64), rel_limit=1e-12),
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
            compare("loss", sc[:1], torch.tensor([loss.value], dtype=torch.float64), rel_limit=1e-9),
            compare("accuracy", sc[1:2], torch.tensor([acc.value], dtype=torch.float64), rel_limit=1e-12),
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
    bad_t = lib.rlhf_cuda_logprobs_f32(ptr(x), ptr(y), n, v, 0.0, -100, ptr(lp), ptr(ent), cu.stream)
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


TIME_VARIANTS = [("auto", 0, 1), ("no-split,no-cache", 1, 0), ("cluster<=16", 16, 1)]


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
        kernels = [
            ("logprobs+entropy fwd", nv4, lambda: cu.logprobs(x, y, 1.0, -100, out=(lp, ent)), torch_fwd, 0.85,
             lambda: compare("logprobs", lp, ref_logprobs(x, y, 1.0, -100)[0])),
            ("logprobs backward", 2 * nv4, lambda: cu.logprobs_backward(x, y, glp, gh, 1.0, -100, out=g), torch_bwd,
             0.75, lambda: compare("grad", g, ref_logprobs_backward(x, y, glp, gh, 1.0, -100))),
            ("kl.full fwd+grad", 3 * nv4, lambda: cu.kl_full(x, xq, gkl, 1.0, out=(kl, g)), torch_kl, 0.70,
             lambda: compare("grad", g, ref_kl(x, xq, gkl, 1.0)[1])),
            ("kl.full fwd only", 2 * nv4, lambda: cu.kl_full(x, xq, None, 1.0, grad=False, out=(kl, None)),
             torch_kl_fwd, None, lambda: compare("kl", kl, ref_kl(x, xq, None, 1.0)[0], atol=1e-4)),
            ("logsoftmax fwd", 2 * nv4, lambda: cu.logsoftmax(x, 1.0, out=g), torch_lsm, None,
             lambda: compare("lsm", g, ref_logsoftmax(x, 1.0))),
            ("logsoftmax backward", 3 * nv4, lambda: cu.logsoftmax_backward(x, xq, 1.0, out=g), torch_lsm_bwd, None,
             lambda: compare("grad", g, ref_logsoftmax_backward(x, xq, 1.0))),
        ]
        for name, nbytes, fn, tfn, target, verify in kernels:
            try:
                t_ms, _, _ = bench(tfn, reps)
            except Exception as e:  # a baseline that does not run is reported, not fatal
                log(f"  torch baseline for {name} failed: {e}")
                t_ms = float("nan")
            for vname, mc, cache in TIME_VARIANTS:
                cu.tuning(mc, cache)
                try:
                    g.fill_(float("nan"))
                    fn()
                    st = cu.sync()
                    launch = cu.last_launch()
                    chk = verify()
                    chk["ok"] = chk["ok"] and st == 0
                    med, lo, hi = bench(fn, reps)
                    med2, _, _ = bench(fn, reps)
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
                log(f"  {name:<22} {n}x{v:<7} {vname:<18} {med*1e3:9.1f} us ({med2*1e3:.1f})  {bw:7.0f} GB/s "
                    f"{100*bw/copy_bw:5.1f}% of copy  torch {t_ms*1e3:9.1f} us  x{t_ms/med:4.2f}  "
                    f"{'ok' if chk['ok'] else 'WRONG'} rel {chk['rel']:.1e}  ({launch})")
            cu.tuning(0, 1)
        del x, xq, g, lsm_out
        torch.cuda.empty_cache()


# ---- report ---------------------------------------------------------------------------------------------

def table():
    lines = []
    copy = RESULTS["copy"]
    lines.append(f"GPU: {RESULTS['device']}")
    if copy:
        lines.append(f"device-to-device copy: {copy['GBps']:.0f} GB/s (1 GiB, read+write bytes, median)")
    nchk = len(RESULTS["checks"])
    nok = sum(1 for c in RESULTS["checks"] if c["ok"])
    lines.append(f"correctness: {nok}/{nchk} checks passed")
    lines.append("")
    head = (f"| {'kernel':<22} | {'shape':<11} | {'variant':<18} | {'us':>8} | {'GB/s':>6} | {'% copy':>8} | "
            f"{'target':>6} | {'torch us':>9} | {'vs torch':>8} | ok |")
    lines.append(head)
    lines.append("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for r in RESULTS["timings"]:
        tgt = f"{100*r['target_of_copy']:.0f}%" if r["target_of_copy"] else "-"
        met = ""
        if r["target_of_copy"] and r["variant"] == "auto":
            met = " <" if r["of_copy"] < r["target_of_copy"] else ""
        lines.append(f"| {r['kernel']:<22} | {r['shape']:<11} | {r['variant']:<18} | {r['ms']*1e3:8.1f} | "
                     f"{r['GBps']:6.0f} | {100*r['of_copy']:5.1f}%{met:2} | {tgt:>6} | {r['torch_ms']*1e3:9.1f} | "
                     f"{r['speedup_vs_torch']:7.2f}x | {'y' if r['correct'] else 'N'}  |")
    lines.append("")
    lines.append("bytes counted: fwd N·V·4 read; logprobs backward read+write N·V·4 each; kl.full+grad 2 reads + "
                 "1 write; kl fwd 2 reads; logsoftmax 1 read + 1 write; its backward 2 reads + 1 write.")
    lines.append("'<' marks an auto-variant row under its target. torch = PyTorch eager, same GPU, same run.")
    if RESULTS["failures"]:
        lines.append(f"FAILURES: {len(RESULTS['failures'])} (see results.json)")
    return "\n".join(lines)


ROW_VARIANTS = {"auto": (0, 1), "no-split,no-cache": (1, 0), "split,no-cache": (8, 0), "cluster<=16": (16, 1),
                "cache,no-split": (1, 1)}
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
        mc, cache = ROW_VARIANTS[vname]
        for (n, v, T, kw) in ROW_SHAPES:
            if vname != "auto" and v <= 1024:
                continue  # warp rows have no variants
            steps.append(lambda n=n, v=v, T=T, kw=kw: (cu.tuning(mc, cache), check_rows(cu, n, v, T, vname, gen, dev, **kw)))
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


def report(out):
    """Merges the part-*.json files of the phases and prints the table."""
    parts = sorted(f for f in os.listdir(out) if f.startswith("part-") and f.endswith(".json"))
    for f in parts:
        with open(os.path.join(out, f)) as fh:
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
    return 1 if RESULTS["failures"] else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", help="path of librlhf.so")
    ap.add_argument("--out", required=True, help="folder for part-<phase>.json, results.json, results.md")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--phase", required=True, help="basic | rows:<variant> | time | report")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.phase == "report":
        return report(args.out)
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
    safe = args.phase.replace(":", "-").replace(",", "_").replace("<=", "le")
    with open(os.path.join(args.out, f"part-{safe}.json"), "w") as fh:
        json.dump(RESULTS, fh, indent=1, default=str)
    return 1 if RESULTS["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
