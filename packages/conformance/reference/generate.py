"""Conformance cases of every SPEC operation from a second float64 reference (numpy only).

The cases in ../cases are the contract's visible set. This file is another reference, written from
docs/SPEC.md alone, that shares no code with the TypeScript backends: it draws random inputs with
the SPEC's edge cases (masked NaN/Inf, -inf and ±1e4 logits, temperatures from 0.01 to 50, ties,
padded ranks, an ignore index inside [0, V), ignored and empty rows, dones, a factor of 0 beside a
non-finite value, n = 1, parameters at their bounds, uint8 masks) and typed-error cases, and writes
them in the same JSON form. The generated set is committed (../generated) and runs on every backend
with the visible one; regenerate it with

    python3 packages/conformance/reference/generate.py packages/conformance/generated [seed] [per-op]
"""
import json
import math
import os
import shutil
import sys

import numpy as np

TOL = {"rtol": 1e-4, "atol": 1e-5}


# ---- case files ---------------------------------------------------------------------------------------

def encode(a, dtype):
    def number(x):
        if isinstance(x, float) and not math.isfinite(x):
            return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
        # float32 inputs in their shortest decimal that rounds back to the same float32
        return float(str(np.float32(x))) if dtype == "float32" else x
    a = np.asarray(a)
    return {"dtype": dtype, "shape": list(a.shape), "data": [number(x) for x in a.reshape(-1).tolist()]}


class Writer:
    def __init__(self, out):
        self.out, self.count = out, 0

    def case(self, op, name, params, inputs, expected=None, error=None):
        """inputs: name -> (array, dtype) or an already encoded tensor; expected: name -> float64 array."""
        self.count += 1
        name = f"{name}-{self.count}"
        case = {"name": f"{op}/{name}", "op": op, "params": params,
                "inputs": {k: v if isinstance(v, dict) else encode(v[0], v[1]) for k, v in inputs.items()}}
        if error:
            case["error"] = error
        else:
            case["expected"] = {k: encode(np.asarray(v, dtype=np.float64), "float64") for k, v in expected.items()}
            case["tolerance"] = TOL
        with open(os.path.join(self.out, f"{op}--{name}.json"), "w") as fh:
            json.dump(case, fh, separators=(",", ":"))


def f32(a):
    """Rounded to float32 (the backends see exactly these numbers), kept in float64."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def log_sigmoid(x):
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def pick(options, i):
    return options[i % len(options)]


# ---- §1 preference losses -----------------------------------------------------------------------------

def pairwise(w, rng, i):
    b = int(rng.integers(1, 40))
    chosen, rejected = f32(rng.normal(0, 3, b)), f32(rng.normal(0, 3, b))
    if i % 3 == 0:
        rejected[: b // 2] = chosen[: b // 2]  # ties: accuracy is strict
    eps, center = pick([0.0, 0.1, 0.3, 0.49], i), pick([0.0, 0.0, 0.01, 0.5], i // 4)
    params = {"labelSmoothing": eps, "centerCoef": center} if i % 5 else {}
    if not i % 5:
        eps = center = 0.0
    inputs = {"chosen": (chosen, "float32"), "rejected": (rejected, "float32")}
    margin = np.zeros(b)
    if i % 2:
        margin = f32(rng.normal(0, 1, b))
        inputs["margin"] = (margin, "float32")
    d, both = chosen - rejected - margin, chosen + rejected
    loss = -(1 - eps) * log_sigmoid(d) - eps * log_sigmoid(-d) + center * both ** 2
    w.case("preference.pairwise", f"B{b}", params, inputs, {
        "loss": loss.mean(),
        "gradChosen": (sigmoid(d) - (1 - eps) + 2 * center * both) / b,
        "gradRejected": (-sigmoid(d) + (1 - eps) + 2 * center * both) / b,
        "accuracy": np.mean(chosen > rejected)})


def ranking(w, rng, i):
    b, k = int(rng.integers(1, 8)), int(rng.integers(2, 9))
    rewards = f32(rng.normal(0, 2, (b, k)))
    ranks = np.stack([rng.permutation(k) for _ in range(b)])
    if i % 2:
        ranks = np.minimum(ranks, k // 2)  # ties form no pair
    if i % 3 == 0:
        padded = rng.random((b, k)) < 0.3
        ranks[padded], rewards[padded] = -1, pick([np.nan, np.inf, -np.inf], i // 3)
    if i % 4 == 0:
        ranks[0], rewards[0] = -1, np.nan  # a prompt without a pair
    inputs = {"rewards": (rewards, "float32"), "ranks": (ranks, "int32")}
    pairs = [[(p, q) for p in range(k) for q in range(k) if 0 <= ranks[r, p] < ranks[r, q]] for r in range(b)]
    prompts = [r for r in range(b) if pairs[r]]
    if not prompts:
        return w.case("preference.ranking", "no-pair", {}, inputs, error="empty")
    grad, losses, right = np.zeros((b, k)), [], 0
    for r in prompts:
        d = np.array([rewards[r, p] - rewards[r, q] for p, q in pairs[r]])
        losses.append(-log_sigmoid(d).mean())
        right += int((d > 0).sum())
        for (p, q), g in zip(pairs[r], (sigmoid(d) - 1) / len(d) / len(prompts)):
            grad[r, p] += g
            grad[r, q] -= g
    w.case("preference.ranking", f"B{b}K{k}", {}, inputs,
           {"loss": np.mean(losses), "grad": grad, "accuracy": right / sum(map(len, pairs))})


def dpo(w, rng, i):
    b = int(rng.integers(1, 30))
    pc, pr, rc, rr = (f32(rng.normal(-50, 10, b)) for _ in range(4))
    beta, loss_type = pick([0.1, 0.5, 2.0, 0.01], i), pick(["sigmoid", "hinge", "ipo"], i)
    eps = pick([0.0, 0.2], i // 3) if loss_type == "sigmoid" else 0.0
    if loss_type == "hinge" and i % 2 == 0:  # β h = 1 exactly: the hinge's gradient is 0 there
        beta, (pc[0], rc[0], pr[0], rr[0]) = 0.5, (-10.0, -12.0, -5.0, -5.0)
    params = {"beta": beta, "lossType": loss_type} | ({"labelSmoothing": eps} if eps else {})
    h = (pc - rc) - (pr - rr)
    bh = beta * h
    if loss_type == "sigmoid":
        loss, dh = -(1 - eps) * log_sigmoid(bh) - eps * log_sigmoid(-bh), beta * (sigmoid(bh) - (1 - eps))
    elif loss_type == "hinge":
        loss, dh = np.maximum(0, 1 - bh), np.where(1 - bh > 0, -beta, 0.0)
    else:
        loss, dh = (h - 1 / (2 * beta)) ** 2, 2 * (h - 1 / (2 * beta))
    chosen, rejected = beta * (pc - rc), beta * (pr - rr)
    w.case("preference.dpo", loss_type, params,
           {k: (v, "float32") for k, v in
            {"policyChosen": pc, "policyRejected": pr, "refChosen": rc, "refRejected": rr}.items()},
           {"loss": loss.mean(), "gradPolicyChosen": dh / b, "gradPolicyRejected": -dh / b,
            "rewardsChosen": chosen, "rewardsRejected": rejected, "accuracy": np.mean(chosen > rejected)})


# ---- §2 log-softmax kernels ---------------------------------------------------------------------------

def logit_rows(rng, n, v, i):
    x = f32(rng.normal(0, 3, (n, v)) * (1e4 if i % 4 == 1 else 1))
    if i % 3 == 2 and v > 1:  # masked-out vocabulary entries (never the first)
        off = rng.random((n, v)) < 0.3
        off[:, 0] = False
        x[off] = -np.inf
    return x


def softmax_stats(x, t):
    """log p and p of softmax(x / t) per row, and the entropy with 0 log 0 = 0."""
    z = x / t
    top = z.max(axis=1, keepdims=True)
    logp = z - (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))
    p = np.exp(logp)
    finite_logp = np.where(p > 0, logp, 0.0)
    return logp, p, finite_logp, -(p * finite_logp).sum(axis=1)


def label_rows(rng, i):
    """Logits, labels (some rows ignored, with NaN logits) and parameters for logprobs and its backward."""
    n, v = int(rng.integers(1, 9)), int(pick([1, 2, 3, 7, 16, 33, 100, 257, 513], int(rng.integers(0, 9))))
    x = logit_rows(rng, n, v, i)
    t = pick([1.0, 0.7, 2.5, 1.3, 0.01, 20.0], i)
    ignore = pick([-100, -1, 5000, 0], i // 2) if i % 2 else -100  # 0: a label inside [0, V) can be ignored
    labels = rng.integers(0, v, n)
    if i % 5:  # mostly labels with a finite logit; some with -inf (logprob -inf)
        labels = np.where(np.isfinite(x[np.arange(n), labels]), labels, 0)
    if n > 1:
        labels[rng.random(n) < 0.25] = ignore
    ignored = labels == ignore
    x[ignored] = 0.0
    shown = x.copy()
    shown[ignored] = np.nan  # an ignored row's logits never leak
    params = {"temperature": t} | ({"ignoreIndex": ignore} if ignore != -100 or i % 4 == 1 else {})
    return x, shown, labels, ignored, t, params


def logprobs(w, rng, i):
    x, shown, labels, ignored, t, params = label_rows(rng, i)
    logp, _, _, entropy = softmax_stats(x, t)
    rows = np.arange(len(labels))
    w.case("logprobs", f"V{x.shape[1]}", params, {"logits": (shown, "float32"), "labels": (labels, "int32")},
           {"logprobs": np.where(ignored, 0.0, logp[rows, np.where(ignored, 0, labels)]),
            "entropy": np.where(ignored, 0.0, entropy)})


def logprobs_backward(w, rng, i):
    x, shown, labels, ignored, t, params = label_rows(rng, i)
    n, v = x.shape
    g_lp, g_h = f32(rng.normal(0, 1, n)), f32(rng.normal(0, 1, n)) if i % 2 else np.zeros(n)
    inputs = {"logits": (shown, "float32"), "labels": (labels, "int32"),
              "gradLogprobs": (np.where(ignored, np.nan, g_lp), "float32")}
    if i % 2:
        inputs["gradEntropy"] = (np.where(ignored, np.inf, g_h), "float32")
    _, p, finite_logp, entropy = softmax_stats(x, t)
    onehot = np.zeros((n, v))
    onehot[np.arange(n)[~ignored], labels[~ignored]] = 1
    grad = (g_lp[:, None] * (onehot - p) - g_h[:, None] * p * (finite_logp + entropy[:, None])) / t
    w.case("logprobs.backward", f"V{v}", params, inputs, {"gradLogits": np.where(ignored[:, None], 0.0, grad)})


def rows_and_temperature(rng, i):
    n, v = int(rng.integers(1, 6)), int(pick([1, 5, 64, 129, 300], int(rng.integers(0, 5))))
    return logit_rows(rng, n, v, i), pick([1.0, 0.5, 3.0, 0.02, 50.0], i)


def logsoftmax(w, rng, i):
    x, t = rows_and_temperature(rng, i)
    w.case("logsoftmax", f"V{x.shape[1]}", {"temperature": t} if i % 2 or t != 1 else {},
           {"logits": (x, "float32")}, {"logsoftmax": softmax_stats(x, t)[0]})


def logsoftmax_backward(w, rng, i):
    x, t = rows_and_temperature(rng, i)
    g = f32(rng.normal(0, 1, x.shape))
    p = softmax_stats(x, t)[1]
    w.case("logsoftmax.backward", f"V{x.shape[1]}", {"temperature": t},
           {"logits": (x, "float32"), "gradOutput": (g, "float32")},
           {"gradLogits": (g - p * g.sum(axis=1, keepdims=True)) / t})


def kl_full(w, rng, i):
    n, v = int(rng.integers(1, 6)), int(pick([1, 2, 9, 64, 257, 300], int(rng.integers(0, 6))))
    xp = logit_rows(rng, n, v, i)
    xq = f32(xp + rng.normal(0, 1, (n, v)))  # -inf where p is -inf: q = 0 only where p = 0
    t = pick([1.0, 0.9, 1.7, 0.05, 20.0], i)
    inputs = {"logitsP": (xp, "float32"), "logitsQ": (xq, "float32")}
    g = np.ones(n)
    if i % 2:
        g = f32(rng.normal(0, 1, n))
        inputs["gradKl"] = (g, "float32")
    logp, p, _, _ = softmax_stats(xp, t)
    logq = softmax_stats(xq, t)[0]
    ratio = np.where(p > 0, logp - np.where(p > 0, logq, 0.0), 0.0)
    kl = (p * ratio).sum(axis=1)
    w.case("kl.full", f"V{v}", {"temperature": t}, inputs,
           {"kl": kl, "gradLogitsP": (g / t)[:, None] * p * (ratio - kl[:, None])})


# ---- §3 KL penalty ------------------------------------------------------------------------------------

def estimator(delta, name):
    """kl and d kl / d logprobs of one estimator."""
    if name == "k1":
        return delta, np.ones_like(delta)
    if name == "k2":
        return delta ** 2 / 2, delta
    if name == "k3":
        return np.exp(-delta) - 1 + delta, 1 - np.exp(-delta)
    return np.abs(delta), np.sign(delta)


def kl_estimate(w, rng, i):
    shape = pick([(7,), (3, 5), (2, 3, 4), (1,)], i)
    lp = f32(rng.normal(-2, 1, shape))
    ref = f32(lp + rng.normal(0, 2, shape))
    if i % 5 == 0:
        ref.reshape(-1)[0] = lp.reshape(-1)[0]  # δ = 0 (abs: gradient 0)
    name = pick(["k1", "k2", "k3", "abs"], i)
    params = {"estimator": name}
    kl, grad = estimator(lp - ref, name)
    if i % 3 == 0:
        c = pick([0.5, 1.0, 10.0], i // 3)
        params["clamp"] = c
        grad = np.where(np.abs(kl) > c, 0.0, grad)
        kl = np.clip(kl, -c, c)
    w.case("kl.estimate", name, params, {"logprobs": (lp, "float32"), "refLogprobs": (ref, "float32")},
           {"kl": kl, "gradLogprobs": grad})


def shape_rewards(w, rng, i):
    b, t = int(rng.integers(1, 6)), int(rng.integers(1, 10))
    scores, lp = f32(rng.normal(0, 1, b)), f32(rng.normal(-2, 1, (b, t)))
    ref = f32(lp + rng.normal(0, 0.5, (b, t)))
    mask = (rng.random((b, t)) < 0.7).astype(np.float64)
    if i % 2:
        mask[0] = 0  # a row without a valid token: zeros, its score unused
    if i % 3 == 0:
        mask[:, 0] = 0
    beta, name = pick([0.05, 0.0, 0.3, 1.0], i), pick(["k1", "k2", "k3", "abs"], i // 2)
    params = {"beta": beta, "estimator": name} if i % 5 else {}
    if not i % 5:
        beta, name = 0.05, "k1"
    if beta == 0:  # a coefficient of 0 removes the KL term even where the estimate is not finite
        lp[-1, -1], ref[-1, 0] = np.inf, np.nan
        mask[-1, -1] = mask[-1, 0] = 1
    kl = np.where(mask != 0, -beta * estimator(lp - ref, name)[0], 0.0) if beta else np.zeros((b, t))
    rewards = kl.copy()
    for r in range(b):
        valid = np.nonzero(mask[r])[0]
        if len(valid):
            rewards[r, valid[-1]] += scores[r]
    w.case("kl.shapeRewards", name, params,
           {"scores": (np.where(mask.sum(axis=1) > 0, scores, np.nan), "float32"),
            "logprobs": (np.where(mask != 0, lp, np.nan), "float32"),
            "refLogprobs": (np.where(mask != 0, ref, -np.inf), "float32"),
            "mask": (mask, pick(["float32", "float32", "float32", "uint8"], i))},
           {"rewards": rewards, "nonScoreRewards": kl})


def kl_adaptive(w, rng, i):
    s = int(rng.integers(1, 25))
    observed, steps = f32(rng.uniform(0, 15, s)), rng.integers(0, 3000, s)
    init, target, horizon = pick([(0.2, 6.0, 10000.0), (0.05, 0.5, 100.0), (1.0, 2.0, 37.0), (0.0, 1.0, 10.0)], i)
    params = {"initKlCoef": init, "target": target, "horizon": horizon} if i % 3 else {}
    if not i % 3:
        init, target, horizon = 0.2, 6.0, 10000.0
    beta, betas = init, []
    for kl, n in zip(observed, steps):
        beta *= 1 + np.clip(kl / target - 1, -0.2, 0.2) * n / horizon
        betas.append(beta)
    w.case("kl.adaptive", f"S{s}", params, {"observedKl": (observed, "float32"), "nSteps": (steps, "int32")},
           {"beta": betas})


# ---- §4 advantages ------------------------------------------------------------------------------------

def gae(w, rng, i):
    b, t = int(rng.integers(1, 6)), int(rng.integers(1, 12))
    rewards, values = f32(rng.normal(0, 1, (b, t))), f32(rng.normal(0, 1, (b, t)))
    with_mask, with_dones, with_boot = i % 2, i % 3 or i % 4 >= 2, i % 5 > 1 or i % 4 >= 2
    mask = (rng.random((b, t)) < 0.75).astype(np.float64) if with_mask else np.ones((b, t))
    if i % 4 == 1:
        mask[0] = 0
    dones = (rng.random((b, t)) < 0.25).astype(np.float64) if with_dones else np.zeros((b, t))
    boot = f32(rng.normal(0, 1, b)) if with_boot else np.zeros(b)
    gamma, lam = pick([1.0, 0.99, 0.0, 0.9], i), pick([0.95, 1.0, 0.0, 0.5], i // 2)
    params = {"gamma": gamma, "lambda": lam} if i % 6 else {}
    if not i % 6:
        gamma, lam = 1.0, 0.95
    if i % 4 >= 2:  # a factor of exactly 0 removes its term even when the other factor is not finite:
        for r in range(b):  # +inf reward just behind a done (or γ = 0), NaN bootstrap behind one
            valid = list(np.nonzero(mask[r])[0])
            cut = [k for k, s in enumerate(valid[:-1]) if dones[r, s] or gamma == 0]
            if cut:
                rewards[r, valid[cut[0] + 1]] = np.inf
            if valid and (dones[r, valid[-1]] or gamma == 0):
                boot[r] = np.nan
    adv = np.zeros((b, t))
    for r in range(b):  # backwards over the valid positions
        next_value, next_adv = boot[r], 0.0
        for s in reversed(np.nonzero(mask[r])[0]):
            c = 1 - dones[r, s]
            delta = rewards[r, s] + (gamma * c * next_value if gamma * c else 0.0) - values[r, s]
            adv[r, s] = delta + (gamma * lam * c * next_adv if gamma * lam * c else 0.0)
            next_value, next_adv = values[r, s], adv[r, s]
    masked = mask == 0
    inputs = {"rewards": (np.where(masked, np.nan, rewards), "float32"),
              "values": (np.where(masked, np.inf, values), "float32")}
    if with_mask:
        inputs["mask"] = (mask, pick(["float32", "uint8"], i // 2))
    if with_dones:
        inputs["dones"] = (np.where(masked, np.nan, dones), "float32")
    if with_boot:
        inputs["bootstrapValues"] = (np.where(mask.sum(axis=1) > 0, boot, np.nan), "float32")
    w.case("gae", f"B{b}T{t}", params, inputs, {"advantages": adv, "returns": np.where(masked, 0.0, adv + values)})


def whiten(w, rng, i):
    shape = pick([(9,), (3, 7), (2, 2, 5), (1,), (4, 1)], i)
    x = f32(rng.normal(3, 2, shape))
    mask = None
    if i % 2:
        mask = (rng.random(shape) < 0.6).astype(np.float64)
        mask.reshape(-1)[0] = 1
        if i % 3 == 0:  # one valid entry: variance 0
            mask[...] = 0
            mask.reshape(-1)[-1] = 1
    m = np.ones(shape) if mask is None else mask
    shift = pick([True, False], i // 2)
    params = {"shiftMean": shift} if i % 3 else {}
    if not i % 3:
        shift = True
    n = m.sum()
    mean = (m * x).sum() / n
    var = 0.0 if n == 1 else (m * (x - mean) ** 2).sum() / (n - 1)
    y = (x - mean) / np.sqrt(var + 1e-8) + (0.0 if shift else mean)
    inputs = {"x": (x if mask is None else np.where(mask == 0, pick([np.nan, np.inf], i // 2), x), "float32")}
    if mask is not None:
        inputs["mask"] = (mask, pick(["float32", "float32", "uint8"], i // 2))
    w.case("whiten", f"n{int(n)}", params, inputs, {"y": np.where(m != 0, y, 0.0)})


# ---- §5 PPO -------------------------------------------------------------------------------------------

AGGREGATIONS = ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"]


def aggregation_weights(mask, aggregation):
    """w with loss = Σ w·l: the three aggregation modes as per-token weights."""
    if aggregation == "token-mean":
        return mask / mask.sum()
    if aggregation == "seq-mean-token-sum":
        return mask / mask.shape[0]
    tokens = mask.sum(axis=1, keepdims=True)
    return np.where(tokens > 0, mask / np.maximum(tokens, 1) / (tokens > 0).sum(), 0.0)


def ppo_batch(rng, i):
    b, t = int(rng.integers(1, 5)), int(rng.integers(1, 10))
    mask = (rng.random((b, t)) < 0.7).astype(np.float64)
    mask[0, 0] = 1
    if i % 3 == 1 and b > 1:
        mask[1] = 0  # a row without a valid token
    return b, t, mask


def ppo_policy(w, rng, i):
    b, t, mask = ppo_batch(rng, i)
    lp = f32(rng.normal(-1, 0.3, (b, t)))
    old = f32(lp + rng.normal(0, 4 if i % 4 == 2 else 0.3, (b, t)))
    adv = f32(rng.normal(0, 1, (b, t)))
    low, high = pick([0.2, 0.1, 0.3], i), pick([None, 0.28, 0.2], i // 3)
    dual, clamp = pick([None, 3.0, 1.5], i // 2), pick([None, 2.0, 0.5], i // 5)
    aggregation = pick(AGGREGATIONS, i)
    params = {"clipLow": low, "aggregation": aggregation}
    params |= {k: v for k, v in {"clipHigh": high, "dualClip": dual, "logRatioClamp": clamp}.items() if v is not None}
    if i % 8 == 7:
        params, low, high, dual, clamp, aggregation = {}, 0.2, None, None, None, "token-mean"
    high = low if high is None else high
    delta, through = lp - old, np.ones((b, t))
    if clamp is not None:
        through = np.where(np.abs(delta) > clamp, 0.0, 1.0)
        delta = np.clip(delta, -clamp, clamp)
    ratio = np.exp(delta)
    l1, l2 = -adv * ratio, -adv * np.clip(ratio, 1 - low, 1 + high)
    first = l1 >= l2
    loss = np.where(first, l1, l2)
    if dual is not None:
        dual_clipped = (adv < 0) & (-dual * adv < loss)
        loss, first = np.where(dual_clipped, -dual * adv, loss), first & ~dual_clipped
    weights = aggregation_weights(mask, aggregation)
    valid = mask != 0
    w.case("ppo.policy", aggregation, params,
           {"logprobs": (np.where(valid, lp, np.nan), "float32"), "oldLogprobs": (old, "float32"),
            "advantages": (np.where(valid, adv, -np.inf), "float32"), "mask": (mask, pick(["uint8", "float32"], i))},
           {"loss": (weights * np.where(valid, loss, 0.0)).sum(),
            "gradLogprobs": np.where(valid & first, -adv * ratio * weights * through, 0.0),
            "clipFrac": (mask * (l2 > l1)).sum() / mask.sum(),
            "approxKl": (mask * (lp - old) ** 2 / 2).sum() / mask.sum()})


def ppo_value(w, rng, i):
    b, t, mask = ppo_batch(rng, i)
    values = f32(rng.normal(0, 1, (b, t)))
    old, returns = f32(values + rng.normal(0, 0.3, (b, t))), f32(rng.normal(0, 1, (b, t)))
    aggregation, clip = pick(AGGREGATIONS, i), pick([0.2, 0.1, None, "absent", 0.5], i)
    params = {"aggregation": aggregation} | ({} if clip == "absent" else {"clipRange": clip})
    clip = 0.2 if clip == "absent" else clip
    clipped = values if clip is None else np.clip(values, old - clip, old + clip)
    plain, other = (values - returns) ** 2, (clipped - returns) ** 2
    unclipped = plain >= other  # the unclipped branch on a tie
    weights = aggregation_weights(mask, aggregation)
    valid = mask != 0
    w.case("ppo.value", aggregation, params,
           {"values": (np.where(valid, values, np.nan), "float32"), "oldValues": (old, "float32"),
            "returns": (returns, "float32"), "mask": (mask, "float32")},
           {"loss": (weights * np.where(valid, 0.5 * np.where(unclipped, plain, other), 0.0)).sum(),
            "gradValues": np.where(valid & unclipped, (values - returns) * weights, 0.0),
            "clipFrac": (mask * (other > plain)).sum() / mask.sum()})


# ---- §6 errors ----------------------------------------------------------------------------------------

def tensor(dtype, shape, fill=0.5):
    return {"dtype": dtype, "shape": list(shape), "data": [fill if dtype.startswith("float") else 0] * math.prod(shape)}


def ints(values, shape=None):
    return {"dtype": "int32", "shape": list(shape or [len(values)]), "data": list(values)}


def errors(w):
    """Typed errors of every operation: a bad parameter, shape, dtype, index, or nothing to reduce."""
    f = "float32"
    rows = {"logits": tensor(f, [2, 4]), "labels": ints([0, 1])}
    table = {
        "preference.pairwise": ({"chosen": tensor(f, [3]), "rejected": tensor(f, [3])}, [
            ("param", {"labelSmoothing": 0.5}, {}), ("param", {"labelSmoothing": -0.1}, {}),
            ("param", {"centerCoef": -1}, {}), ("shape", {}, {"margin": tensor(f, [2])}),
            ("shape", {}, {"chosen": tensor("int32", [3])}),
            ("shape", {}, {"chosen": tensor(f, [3, 1]), "rejected": tensor(f, [3, 1])}),
            ("empty", {}, {"chosen": tensor(f, [0]), "rejected": tensor(f, [0])})]),
        "preference.ranking": ({"rewards": tensor(f, [1, 3]), "ranks": ints([0, 1, 2], [1, 3])}, [
            ("index", {}, {"ranks": ints([0, -2, 1], [1, 3])}), ("index", {}, {"ranks": ints([0, 3, 1], [1, 3])}),
            ("shape", {}, {"ranks": tensor(f, [1, 3])}), ("shape", {}, {"rewards": tensor(f, [1, 4])}),
            ("shape", {}, {"rewards": tensor(f, [3]), "ranks": ints([0, 1, 2])}),
            ("empty", {}, {"ranks": ints([1, 1, 1], [1, 3])}), ("empty", {}, {"ranks": ints([-1, -1, -1], [1, 3])}),
            ("empty", {}, {"rewards": tensor(f, [2, 1]), "ranks": ints([0, 0], [2, 1])})]),
        "preference.dpo": ({k: tensor(f, [2]) for k in ["policyChosen", "policyRejected", "refChosen", "refRejected"]}, [
            ("param", {"beta": 0}, {}), ("param", {"lossType": "robust"}, {}),
            ("param", {"labelSmoothing": 0.5}, {}), ("shape", {}, {"refRejected": tensor(f, [3])})]),
        "logprobs": (rows, [
            ("index", {}, {"labels": ints([0, -1])}), ("index", {"ignoreIndex": -1}, {"labels": ints([4, -1])}),
            ("param", {"temperature": -1}, {}), ("shape", {}, {"logits": tensor(f, [8])}),
            ("shape", {}, {"labels": tensor(f, [2])}), ("shape", {}, {"logits": tensor("int32", [2, 4])}),
            ("shape", {}, {"labels": ints([0, 1], [2, 1])}), ("shape", {}, {"labels": ints([0, 1, 2])})]),
        "logprobs.backward": (rows | {"gradLogprobs": tensor(f, [2])}, [
            ("shape", {}, {"gradLogprobs": tensor(f, [3])}), ("shape", {}, {"gradEntropy": tensor(f, [1])}),
            ("index", {}, {"labels": ints([0, 9])}), ("param", {"temperature": 0}, {})]),
        "logsoftmax": ({"logits": tensor(f, [2, 3])}, [
            ("param", {"temperature": 0}, {}), ("shape", {}, {"logits": tensor(f, [3])})]),
        "logsoftmax.backward": ({"logits": tensor(f, [2, 3]), "gradOutput": tensor(f, [2, 3])}, [
            ("shape", {}, {"gradOutput": tensor(f, [3, 2])}), ("param", {"temperature": -2}, {})]),
        "kl.full": ({"logitsP": tensor(f, [2, 3]), "logitsQ": tensor(f, [2, 3])}, [
            ("shape", {}, {"gradKl": tensor(f, [3])}), ("shape", {}, {"logitsQ": tensor(f, [2, 4])}),
            ("param", {"temperature": 0}, {})]),
        "kl.estimate": ({"logprobs": tensor(f, [2, 3]), "refLogprobs": tensor(f, [2, 3])}, [
            ("shape", {}, {"refLogprobs": tensor(f, [3, 2])}), ("param", {"clamp": 0}, {}),
            ("param", {"clamp": -1}, {}), ("param", {"estimator": "k4"}, {})]),
        "kl.shapeRewards": ({"scores": tensor(f, [2]), "logprobs": tensor(f, [2, 3]), "refLogprobs": tensor(f, [2, 3]),
                             "mask": tensor(f, [2, 3], 1)}, [
            ("param", {"beta": -0.1}, {}), ("param", {"estimator": "k9"}, {}),
            ("shape", {}, {"mask": tensor(f, [2, 2], 1)}), ("shape", {}, {"scores": tensor(f, [3])})]),
        "kl.adaptive": ({"observedKl": tensor(f, [2]), "nSteps": ints([1, 2])}, [
            ("param", {"target": 0}, {}), ("param", {"horizon": 0}, {}), ("param", {"horizon": -5}, {}),
            ("param", {"initKlCoef": -0.1}, {}), ("param", {}, {"nSteps": ints([1, -2])}),
            ("shape", {}, {"nSteps": tensor(f, [2])}), ("shape", {}, {"observedKl": tensor(f, [3])})]),
        "gae": ({"rewards": tensor(f, [2, 3]), "values": tensor(f, [2, 3])}, [
            ("param", {"gamma": -0.1}, {}), ("param", {"lambda": 1.1}, {}),
            ("shape", {}, {"values": tensor(f, [2, 4])}), ("shape", {}, {"mask": tensor(f, [3, 2], 1)}),
            ("shape", {}, {"dones": tensor(f, [2, 2])}), ("shape", {}, {"bootstrapValues": tensor(f, [3])})]),
        "whiten": ({"x": tensor(f, [4])}, [
            ("shape", {}, {"mask": tensor(f, [2, 2], 1)}), ("empty", {}, {"x": tensor(f, [0])}),
            ("empty", {}, {"mask": tensor("uint8", [4], 0)})]),
        "ppo.policy": ({k: tensor(f, [2, 3]) for k in ["logprobs", "oldLogprobs", "advantages"]} | {"mask": tensor(f, [2, 3], 1)}, [
            ("param", {"clipLow": 0}, {}), ("param", {"clipHigh": -0.1}, {}), ("param", {"dualClip": 0.5}, {}),
            ("param", {"aggregation": "sum"}, {}), ("param", {"logRatioClamp": 0}, {}),
            ("shape", {}, {"advantages": tensor(f, [2, 2])}), ("shape", {}, {"mask": tensor(f, [3, 2], 1)}),
            ("empty", {"aggregation": "seq-mean-token-mean"}, {"mask": tensor(f, [2, 3], 0)}),
            ("empty", {"aggregation": "seq-mean-token-sum"}, {"mask": tensor("uint8", [2, 3], 0)})]),
        "ppo.value": ({k: tensor(f, [2, 3]) for k in ["values", "oldValues", "returns"]} | {"mask": tensor(f, [2, 3], 1)}, [
            ("param", {"clipRange": 0}, {}), ("param", {"clipRange": -0.2}, {}), ("param", {"aggregation": "mean"}, {}),
            ("shape", {}, {"returns": tensor(f, [2, 2])}), ("empty", {}, {"mask": tensor(f, [2, 3], 0)})]),
    }
    for op, (base, variants) in table.items():
        for kind, params, changed in variants:
            w.case(op, f"error-{kind}", params, base | changed, error=kind)


OPS = [pairwise, ranking, dpo, logprobs, logprobs_backward, logsoftmax, logsoftmax_backward, kl_full,
       kl_estimate, shape_rewards, kl_adaptive, gae, whiten, ppo_policy, ppo_value]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "generated"
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    per_op = int(sys.argv[3]) if len(sys.argv) > 3 else 12
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    w = Writer(out)
    with np.errstate(all="ignore"):  # -inf logits and NaN at masked positions are meant
        for op in OPS:
            rng = np.random.default_rng([seed, OPS.index(op)])
            for i in range(per_op):
                op(w, rng, i)
    errors(w)
    print(f"{w.count} cases in {out} (seed {seed}, {per_op} per operation)")


if __name__ == "__main__":
    main()
