"""Slow, plainly written reference of bgsub's mixture model.

Python loops over pixels and components, float32 arithmetic, written from the
equations in ``MixtureMasker``'s docstring rather than from the kernels: the
rank order is an explicit stable sort by w/sigma, the background set B is an
explicit cumulative sum in rank order.  The fast kernels must agree with it:
identical masks, state within float32 tolerance.

The state is kept as the kernels store it, 16-bit codes (see
``bgsub.kernels``): every value is decoded when read and encoded when written,
with the formulas written out again here (``_dec_*`` / ``_enc_*``).

Two choices are shared with the kernels on purpose, so that agreement can be
exact rather than approximate:

* the sum that decides the background set is a sum of the integer weight
  codes, compared with ``T * 65535``: exact in any order;
* the renormalising sum after a replacement runs over the slots in order, in
  float32, and the weights are multiplied by its reciprocal.

``quantize=False`` keeps float32 state instead (no codes): the model as it was
before 16-bit storage, to measure what the storage changes.

``naive_shadows`` is the reference of ``bgsub.kernels.shadows``: the same equations,
pixel by pixel and component by component in rank order.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from bgsub.config import ModelConfig

f32 = np.float32
W_PRUNE = f32(1e-8)  # float32 state only: smaller weights become 0 (no denormals)
W_ONE = f32(65535.0)
MU_ONE = f32(256.0)


class NaiveMixture:
    """Reference model with the API and the learning-rate schedule of MixtureMasker."""

    def __init__(self, quantize=True, **params):
        self.quantize = quantize
        # same defaults as the product: the shipped configuration
        p = dataclasses.asdict(ModelConfig(**params))
        k, learning_rate, match_threshold = p["k"], p["learning_rate"], p["match_threshold"]
        background_ratio, init_weight, init_variance = (p["background_ratio"], p["init_weight"],
                                                        p["init_variance"])
        min_variance, max_variance, rho = p["min_variance"], p["max_variance"], p["rho"]
        self.diagonal = p["covariance"] == "diagonal"  # per-channel variances for colour
        self.k = k
        self.alpha = learning_rate
        self.lam2 = f32(match_threshold ** 2)
        self.T = f32(background_ratio)
        self.w_init = f32(init_weight)
        self.var_init = f32(init_variance)
        self.var_min = f32(min_variance)
        self.var_max = f32(max_variance)
        self.step = (self.var_max - self.var_min) / W_ONE  # one variance code
        self.inv_step = f32(1.0) / self.step if self.step > 0 else f32(0.0)
        self.T_codes = self.T * W_ONE  # T in weight codes
        self.rho = rho
        self.shadow = (p["shadows"], p["shadow_value"], p["shadow_ratio_min"],
                       p["shadow_threshold"], match_threshold)
        self.eps = p["outlier_weight"]
        self.recovery = (p["recovery_drop"], p["recovery_rate"], p["recovery_frames"])
        self.ll = math.nan
        self.ll_average = None
        self.recovery_left = 0
        self.boosted = False
        self.t = 0
        self.w = self.mu = self.var = None
        self.wq = None  # the weights' integer codes (quantize=True)
        # how often each path ran, so tests can show they exercised it
        self.replacements = 0
        self.matches_below_top = 0
        self.prunes = 0
        self.reranks = 0  # pixels whose slots changed rank order

    def apply(self, frame, learning_rate=None):
        h, wd = frame.shape[:2]
        x = frame.reshape(h * wd, -1)
        n, c = x.shape
        if self.w is None:
            if learning_rate == 0:
                return np.zeros((h, wd), np.uint8)
            self.w = np.zeros((self.k, n), np.float32)
            self.wq = np.zeros((self.k, n), np.int64)
            self.mu = np.zeros((self.k, c, n), np.float32)
            self.var = np.full((self.k, c if self.diagonal else 1, n),
                               self._stored_var(self.var_init), np.float32)
        self.ll = self._mean_log_likelihood(x) if self.t > 0 else math.nan
        learn = learning_rate != 0
        if learn:
            self.t += 1
            self.boosted = learning_rate is None and self._recovering()
            if learning_rate is None:
                alpha = max(self.alpha, 1.0 / self.t)
                if self.boosted:
                    alpha = max(alpha, self.recovery[1])
            else:
                alpha = learning_rate
        mask = np.zeros(n, np.uint8)
        self.last_match = np.full(n, -1)  # per pixel: the slot it matched, -1 none
        self.last_reranked = np.zeros(n, bool)  # per pixel: its slots changed order
        for p in range(n):
            value = [f32(x[p, ch]) for ch in range(c)]
            mask[p] = self._pixel(p, value, f32(alpha) if learn else None)
        if learn and self.t == 1:
            mask[:] = 0
        elif self.shadow[0]:
            # on the model as it is now, after learning from the frame
            _, value, ratio_min, tau, lam = self.shadow
            mask = naive_shadows(x, self.w, self.mu, self.var, mask, self.T, lam, ratio_min,
                                 tau, value)
        return mask.reshape(h, wd)

    @property
    def per_channel(self):
        """A variance per channel (diagonal colour); grey diagonal is spherical."""
        return self.var.shape[1] > 1

    # -- storage: what a written value reads back as ---------------------------

    def _set_w(self, j, p, value):
        """Store a weight: the code truncates min(w * 65535, 65535), read back as code / 65535."""
        if not self.quantize:
            self.w[j, p] = value
            return
        code = int(min(value * W_ONE, W_ONE))
        self.prunes += code == 0 < self.wq[j, p]  # truncation empties a decayed slot
        self.wq[j, p] = code
        self.w[j, p] = f32(code) * (f32(1.0) / W_ONE)

    def _stored_mu(self, m):
        """A mean as stored: rounded to 1/256."""
        if not self.quantize:
            return m
        return f32(int(m * MU_ONE + f32(0.5))) * (f32(1.0) / MU_ONE)

    def _stored_var(self, v):
        """A variance as stored: var_min + code * step, the code rounded."""
        if not self.quantize:
            return v
        code = int(min((v - self.var_min) * self.inv_step + f32(0.5), W_ONE))
        return self.var_min + f32(code) * self.step

    def _background_set(self, p, order):
        """The first components in rank order whose cumulative weight exceeds T."""
        background = []
        cumulative = 0.0  # codes: an exact integer; float32 weights: exact in float64
        limit = float(self.T_codes if self.quantize else self.T)
        for j in order:
            background.append(j)
            cumulative += int(self.wq[j, p]) if self.quantize else float(self.w[j, p])
            if cumulative > limit:
                break
        return background

    def _rank_variance(self, j, p):
        """sigma^2 for ranking: the variance, or the mean of the channels' variances."""
        if not self.per_channel:
            return self.var[j, 0, p]
        s = f32(0.0)
        for ch in range(self.var.shape[1]):
            s = s + self.var[j, ch, p]
        return s * (f32(1.0) / f32(self.var.shape[1]))

    def _mean_log_likelihood(self, x):
        """Mean of ln p(x) over runs of 32 pixels, p(x) with a uniform outlier term.

        The runs start every 32 * max(1, N // 1024) pixels.
        """
        n, c = x.shape
        stride = 32 * max(1, n // 1024)
        total, count = 0.0, 0
        for p in range(n):
            if p % stride >= 32:
                continue
            mix = 0.0
            for j in range(self.k):
                if self.w[j, p] <= 0:
                    continue
                s = 0.0  # ln |2 pi Sigma| + Mahalanobis distance, channel by channel
                for ch in range(c):
                    v = float(self.var[j, ch if self.per_channel else 0, p])
                    d = float(x[p, ch]) - float(self.mu[j, ch, p])
                    s += math.log(2.0 * math.pi * v) + d * d / v
                mix += float(self.w[j, p]) * math.exp(-0.5 * s)
            total += math.log((1.0 - self.eps) * mix + self.eps * 256.0 ** -c)
            count += 1
        return total / count

    def _recovering(self):
        """A drop of more than recovery_drop below the running average starts a recovery."""
        drop, _, frames = self.recovery
        if drop <= 0 or not math.isfinite(self.ll):
            return False
        if (self.recovery_left == 0 and self.ll_average is not None
                and self.ll < self.ll_average - drop):
            self.recovery_left = frames
        if self.recovery_left > 0:
            self.recovery_left -= 1
            if self.recovery_left == 0:
                self.ll_average = None
            return True
        self.ll_average = self.ll if self.ll_average is None else (0.9 * self.ll_average
                                                                   + 0.1 * self.ll)
        return False

    def foreground_probability(self, frame):
        """1 - (1 - eps) sum_{j in B} w_j N_j(x) / p(x), per pixel, under the current model."""
        h, wd = frame.shape[:2]
        x = frame.reshape(h * wd, -1)
        n, c = x.shape
        out = np.zeros(n, np.float32)
        for p in range(n):
            order, _ = self._rank_order(p)
            background = self._background_set(p, order)
            mix = bg = 0.0
            for j in range(self.k):
                if self.w[j, p] <= 0:
                    continue
                s = 0.0
                for ch in range(c):
                    v = float(self.var[j, ch if self.per_channel else 0, p])
                    d = float(x[p, ch]) - float(self.mu[j, ch, p])
                    s += math.log(2.0 * math.pi * v) + d * d / v
                dens = float(self.w[j, p]) * math.exp(-0.5 * s)
                mix += dens
                if j in background:
                    bg += dens
            total = (1.0 - self.eps) * mix + self.eps * 256.0 ** -c
            out[p] = 1.0 - (1.0 - self.eps) * bg / total
        return out.reshape(h, wd)

    def _rank_order(self, p):
        """Slots sorted by w/sigma (compared as w^2/sigma^2), descending; stable."""
        keys = [self.w[j, p] * self.w[j, p] / self._rank_variance(j, p) for j in range(self.k)]
        return sorted(range(self.k), key=lambda j: -keys[j]), keys

    def _pixel(self, p, value, alpha):
        c = len(value)
        order, keys = self._rank_order(p)

        # match: the first component in rank order within lambda sigma
        matched = None
        d2_matched = None
        for j in order:
            if self.w[j, p] <= 0:
                continue  # empty slot
            # m2: the mean over channels of squared distance / variance
            s = f32(0.0)
            for ch in range(c):
                diff = value[ch] - self.mu[j, ch, p]
                if self.per_channel:
                    s = s + diff * diff / self.var[j, ch, p]
                else:
                    s = s + diff * diff
            d2 = s * (f32(1.0) / f32(c))
            limit = self.lam2 if self.per_channel else self.lam2 * self.var[j, 0, p]
            if d2 < limit:
                matched, d2_matched = j, d2
                break

        # background: the first B components in rank order whose cumulative weight exceeds T
        background = self._background_set(p, order)
        foreground = matched is None or matched not in background

        self.last_match[p] = -1 if matched is None else matched
        if alpha is not None:
            self._learn(p, value, alpha, matched, d2_matched, order, keys)
            self.last_reranked[p] = self._store_in_rank_order(p)
        return 255 if foreground else 0

    def _store_in_rank_order(self, p):
        """Keep the slots in rank order: the kernels' state is always stored sorted."""
        order, _ = self._rank_order(p)
        if order == list(range(self.k)):
            return False
        self.reranks += 1
        for a in (self.w, self.wq, self.mu, self.var):
            a[:, ..., p] = a[order, ..., p]
        return True

    def _learn(self, p, value, alpha, matched, d2, order, keys):
        k, c = self.k, len(value)
        one_minus_a = f32(1.0) - alpha
        if matched is not None:
            if matched != order[0]:
                self.matches_below_top += 1
            var_old = self.var[matched, 0, p]
            for j in range(k):
                new = one_minus_a * self.w[j, p]
                if j == matched:
                    new = new + alpha
                    w_matched = new  # rho uses the new weight before it is stored
                elif new < W_PRUNE and not self.quantize:
                    self.prunes += new > 0
                    new = f32(0.0)
                self._set_w(j, p, new)
            if self.rho == "alpha_over_weight":
                rho = alpha / w_matched
            elif not self.per_channel:
                eta = ((2.0 * math.pi * float(var_old)) ** (-c / 2.0)
                       * math.exp(-(c / 2.0) * float(d2) / float(var_old)))
                rho = f32(min(float(alpha) * eta, 1.0))
            else:
                det = 1.0  # |2 pi Sigma|
                for ch in range(c):
                    det *= 2.0 * math.pi * float(self.var[matched, ch, p])
                eta = det ** -0.5 * math.exp(-(c / 2.0) * float(d2))
                rho = f32(min(float(alpha) * eta, 1.0))
            for ch in range(c):
                m = self.mu[matched, ch, p]
                diff = value[ch] - m
                self.mu[matched, ch, p] = self._stored_mu(m + rho * diff)
                if self.per_channel:
                    v = self.var[matched, ch, p]
                    v = v + rho * (diff * diff - v)
                    self.var[matched, ch, p] = self._stored_var(min(max(v, self.var_min),
                                                                    self.var_max))
            if not self.per_channel:
                v = var_old + rho * (d2 - var_old)
                self.var[matched, 0, p] = self._stored_var(min(max(v, self.var_min),
                                                               self.var_max))
        else:
            # replace the least probable component: last in rank order
            self.replacements += 1
            r = order[-1]
            total = f32(0.0)
            weights = []
            for j in range(k):
                if j == r:
                    new = self.w_init
                else:
                    new = one_minus_a * self.w[j, p]
                    if new < W_PRUNE and not self.quantize:
                        self.prunes += new > 0
                        new = f32(0.0)
                weights.append(new)
                total = total + new
            inv = f32(1.0) / total
            for j in range(k):
                self._set_w(j, p, weights[j] * inv)
            for ch in range(c):
                self.mu[r, ch, p] = self._stored_mu(value[ch])
            self.var[r, :, p] = self._stored_var(self.var_init)

    def state(self):
        return {"w": self.w.copy(), "mu": self.mu.copy(), "var": self.var.copy()}


def naive_shadows(x, w, mu, var, mask, background_ratio, match_threshold, ratio_min, tau, value):
    """Relabel the foreground pixels that are cast shadows of a background component.

    x (N, C) uint8, w (k, N), mu (k, C, N), var (k, V, N) float32, mask (N,)
    uint8; returns a new mask.  Pixel p, at 255, becomes ``value`` when some
    component j among the first B in rank order (the background) has w > 0
    and, with sigma_c^2 its variances (all equal when V = 1):

    * brightness ratio a = sum_c x_c mu_c / sigma_c^2 / sum_c mu_c^2 / sigma_c^2
      (> 0 denominator) in [ratio_min, 1];
    * mu's distance from the grey axis, mean over channels of
      (mu_c - g)^2 / sigma_c^2 with g the precision-weighted mean of mu, at
      least tau^2 (a grey background cannot tell a shadow from a grey object);
    * colour distortion, mean over channels of (x_c - a mu_c)^2 / sigma_c^2,
      below tau^2 a^2;
    * x does not match j (mean over channels of (x_c - mu_c)^2 / sigma_c^2
      below lambda^2): that would be the component this frame matched or
      created.

    Spherical sums run over squared differences and compare with tau^2
    sigma^2 (lambda^2 sigma^2), in the kernel's order of operations.
    """
    k, c, n = mu.shape
    per_channel = var.shape[1] > 1
    inv_c = f32(1.0) / f32(c)
    lam2 = f32(match_threshold ** 2)
    tau2 = f32(tau ** 2)
    ratio_min = f32(ratio_min)
    out = mask.copy()
    for p in range(n):
        if mask[p] != 255:
            continue
        keys = []
        for j in range(k):
            if per_channel:
                s = f32(0.0)
                for ch in range(c):
                    s = s + var[j, ch, p]
                rank_var = s * inv_c
            else:
                rank_var = var[j, 0, p]
            keys.append(w[j, p] * w[j, p] / rank_var)
        order = sorted(range(k), key=lambda j: -keys[j])  # stable: ties to the lower slot
        # the background: until the cumulative weight exceeds T, summed as the
        # stored integer codes (w = code / 65535) like the classification
        cumulative = 0
        limit = float(f32(background_ratio) * W_ONE)
        for j in order:
            if w[j, p] > 0 and _naive_darker_copy(x[p], mu[:, :, p], var[:, :, p], j,
                                                  per_channel, inv_c, lam2, ratio_min, tau2):
                out[p] = value
                break
            cumulative += round(float(w[j, p]) * 65535)
            if cumulative > limit:
                break
    return out


def _naive_darker_copy(xp, mu, var, j, per_channel, inv_c, lam2, ratio_min, tau2):
    c = mu.shape[1]
    xs = [f32(xp[ch]) for ch in range(c)]
    sig2 = [var[j, ch if per_channel else 0] for ch in range(c)]
    num = den = f32(0.0)
    for ch in range(c):
        m = mu[j, ch]
        if per_channel:
            num = num + xs[ch] * m / sig2[ch]
            den = den + m * m / sig2[ch]
        else:
            num = num + xs[ch] * m
            den = den + m * m
    if not (den > 0 and ratio_min * den <= num <= den):
        return False
    a = num / den
    scale = f32(1.0) if per_channel else sig2[0]
    if per_channel:
        g_num = g_den = f32(0.0)
        for ch in range(c):
            g_num = g_num + mu[j, ch] / sig2[ch]
            g_den = g_den + f32(1.0) / sig2[ch]
        grey = g_num / g_den
    else:
        total = f32(0.0)
        for ch in range(c):
            total = total + mu[j, ch]
        grey = total * inv_c
    chroma = dist = match = f32(0.0)
    for ch in range(c):
        g = mu[j, ch] - grey
        d = xs[ch] - a * mu[j, ch]
        e = xs[ch] - mu[j, ch]
        if per_channel:
            chroma = chroma + g * g / sig2[ch]
            dist = dist + d * d / sig2[ch]
            match = match + e * e / sig2[ch]
        else:
            chroma = chroma + g * g
            dist = dist + d * d
            match = match + e * e
    if per_channel:
        coloured = chroma * inv_c >= tau2
        close = dist * inv_c < tau2 * a * a
        matches = match * inv_c < lam2
    else:
        coloured = chroma * inv_c >= tau2 * scale
        close = dist * inv_c < tau2 * a * a * scale
        matches = match * inv_c < lam2 * scale
    return bool(coloured and close and not matches)


def naive_em(x, weights, means, variances, iterations, var_min, var_max):
    """Plain EM for one sample set x (S, C) from given parameters; returns them and the LL trace.

    weights (k,), means (k, C), variances (k, V) with V = 1 (spherical) or C.
    """
    x = np.asarray(x, np.float64)
    w, mu, var = (np.array(a, np.float64) for a in (weights, means, variances))
    s, c = x.shape
    k, v = var.shape
    trace = []

    def log_gauss(j):
        sig2 = np.broadcast_to(var[j], (c,)) if v == 1 else var[j]
        return -0.5 * (np.log(2 * np.pi * sig2) + (x - mu[j]) ** 2 / sig2).sum(axis=1)

    for it in range(iterations + 1):
        logp = np.full((s, k), -np.inf)
        for j in range(k):
            if w[j] > 0:
                logp[:, j] = np.log(w[j]) + log_gauss(j)
        peak = logp.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(logp - peak).sum(axis=1))
        r = np.exp(logp - log_norm[:, None])
        trace.append(log_norm.mean())
        if it == iterations:
            break
        for j in range(k):
            nk = r[:, j].sum()
            if nk < 1e-10:
                w[j] = 0.0
                continue
            w[j] = nk / s
            mu[j] = (r[:, j, None] * x).sum(axis=0) / nk
            sq = (x - mu[j]) ** 2
            if v == 1:
                var[j, 0] = (r[:, j] * sq.sum(axis=1)).sum() / nk / c
            else:
                var[j] = (r[:, j, None] * sq).sum(axis=0) / nk
            var[j] = np.clip(var[j], var_min, var_max)
    return w, mu, var, r, np.array(trace)
