"""Slow, plainly written reference of bgsub's mixture model.

Python loops over pixels and components, float32 arithmetic, written from the
equations in ``MixtureMasker``'s docstring rather than from the kernels: the
rank order is an explicit stable sort by w/sigma, the background set B is an
explicit cumulative sum in rank order.  The fast kernels must agree with it:
identical masks, state within float32 tolerance.

The state is kept as the kernels store it, 16-bit codes (see
``bgsub.model.kernels``): every value is decoded when read and encoded when written,
with the formulas written out again here (``_dec_*`` / ``_enc_*``).

Two choices are shared with the kernels on purpose, so that agreement can be
exact rather than approximate:

* the sum that decides the background set is a sum of the integer weight
  codes, compared with ``T * 65535``: exact in any order;
* the renormalising sum after a replacement runs over the slots in order, in
  float32, and the weights are multiplied by its reciprocal.

``quantize=False`` keeps float32 state instead (no codes): the model as it was
before 16-bit storage, to measure what the storage changes.

``naive_shadows`` is the reference of ``bgsub.model.kernels.shadows``: the same equations,
pixel by pixel and component by component in rank order.

Accuracy II's equations are here too, written from their descriptions in
``bgsub.model.kernels.frame`` (flicker level, selective update), ``bgsub.model.kernels.neighbours``
(neighbour match, shadows on grey backgrounds by texture, ghost cells),
``bgsub.model.kernels.ghosts`` (the outline test and the release of ghost cells) and
``bgsub.model.masker`` (recovery by grid cells).

``NaiveBlinkGate`` is the reference of the blink gate of
``bgsub.model.postprocess``: the blink levels and the choice of window.

At the end, the scene detectors' measures of a look (``bgsub.scan.scene``):
the weather grid, the sums against the reference, the phase peak's centroid.
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
FLICKER_ONE = 32767  # the flicker level's 1.0 (15 bits; bit 15 holds the last classification)
GHOST_CELL = 8


class NaiveMixture:
    """Reference model with the API and the learning-rate schedule of MixtureMasker."""

    def __init__(self, quantize=True, fps=None, **params):
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
        self.recovery_cells = p["recovery_cells"]
        # selective update: the foreground rate that keeps a stopped object
        # foreground absorb_seconds * fps frames (the inverse of absorption_frames)
        frames = p["absorb_seconds"] * (fps if fps is not None else p["fps"])
        t_prime = max(background_ratio, 0.5)
        w0 = init_weight / (1.0 + init_weight)
        self.alpha_fg = min(max(1.0 - (t_prime / (1.0 - w0)) ** (1.0 / max(frames - 1.0, 1.0)),
                                1e-9), 1.0)
        self.inv_ref = f32(1.0 / p["flicker_reference"] if p["flicker_reference"] > 0 else 0.0)
        self.lam_gain = f32(p["flicker_threshold"])
        self.lam_from = f32(p["flicker_threshold_from"])
        self.radius = p["neighbour_radius"]
        self.gate = int(p["neighbour_flicker"] * FLICKER_ONE)
        self.texture = p["shadows"] and p["shadow_texture"]
        self.ghost = (p["ghost_frames"], f32(p["ghost_rate"]), p["ghost_contrast"])
        self.frames = 0  # frames counted for the ghost test
        self.rescued = self.textured = 0  # pixels the neighbour match and the texture test took
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
        self._orders = None  # each pixel's rank order, during the neighbour pass

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
            self.flicker = np.zeros(n, np.int64)  # the flicker words
            self.release = np.zeros(n, bool)
            self.cells_shape = (-(-h // GHOST_CELL), -(-wd // GHOST_CELL))
            self.ghost_run = np.zeros(self.cells_shape, np.int64)
        self.h, self.wd = h, wd
        self.ll = self._mean_log_likelihood(x) if self.t > 0 else math.nan
        learn = learning_rate != 0
        alpha = alpha_fg = None
        if learn:
            self.t += 1
            self.boosted = learning_rate is None and self._recovering()
            if learning_rate is None:
                alpha = max(self.alpha, 1.0 / self.t)
                alpha_fg = self.alpha_fg
                if self.boosted:
                    alpha = max(alpha, self.recovery[1])
                    alpha_fg = max(alpha_fg, self.recovery[1])
            else:
                alpha = alpha_fg = learning_rate
        mask = np.zeros(n, np.uint8)
        self.last_match = np.full(n, -1)  # per pixel: the slot it matched, -1 none
        self.last_reranked = np.zeros(n, bool)  # per pixel: its slots changed order
        for p in range(n):
            value = [f32(x[p, ch]) for ch in range(c)]
            mask[p] = self._pixel(p, value, f32(alpha) if learn else None,
                                  f32(alpha_fg) if learn else None)
        if self.shadow[0]:
            # on the model as it is now, after learning from the frame
            _, value, ratio_min, tau, lam = self.shadow
            mask = naive_shadows(x, self.w, self.mu, self.var, mask, self.T, lam, ratio_min,
                                 tau, value)
        cells = self._neighbour_pass(x, mask)
        if learn and self.t == 1:
            mask[:] = 0
        elif learn and self.ghost[0] > 0:
            self.frames += 1
            if self.frames % 4 == 0:  # a test every fourth frame counts for four
                self._track_ghosts(x, mask, cells)
        return mask.reshape(h, wd)

    # -- accuracy II ---------------------------------------------------------------

    def _new_flicker(self, p, own):
        """The flicker word after this frame: V += (32767 b - V) >> 5, b = classification changed."""
        word = int(self.flicker[p])
        prev = word >> 15
        level = word & FLICKER_ONE
        changed = 1 if own != prev else 0
        level = level + ((changed * FLICKER_ONE - level) >> 5)  # Python's >> floors, as the kernel's
        self.flicker[p] = level | (own << 15)

    def _rate(self, p, fg, alpha, alpha_fg):
        """Background: alpha; foreground: alpha_fg raised with the flicker level; ghosts: faster."""
        if not fg:
            return alpha
        if self.release[p]:
            return max(self.ghost[1], alpha)
        level = f32(self.flicker[p] & FLICKER_ONE) * f32(1.0 / FLICKER_ONE)
        share = min(level * self.inv_ref, f32(1.0))
        return alpha_fg + share * (alpha - alpha_fg)

    def _matches_background(self, q, value):
        """Whether value matches one of pixel q's background components (the match rule)."""
        order, _ = self._rank_order(q)
        c = len(value)
        for j in order:
            if self.w[j, q] <= 0:
                continue
            s = f32(0.0)
            for ch in range(c):
                diff = value[ch] - self.mu[j, ch, q]
                s = s + (diff * diff / self.var[j, ch, q] if self.per_channel else diff * diff)
            d2 = s * (f32(1.0) / f32(c))
            limit = self.lam2 if self.per_channel else self.lam2 * self.var[j, 0, q]
            if d2 < limit:
                return j in self._background_set(q, order)
        return False

    def _grey_darker(self, x, p):
        """A darker copy of a background component, the grey check left out."""
        order, _ = self._rank_order(p)
        c = x.shape[1]
        _, _, ratio_min, tau, lam = self.shadow
        for j in self._background_set(p, order):
            if self.w[j, p] > 0 and _naive_darker_copy(
                    x[p], self.mu[:, :, p], self.var[:, :, p], j, self.per_channel,
                    f32(1.0) / f32(c), f32(lam ** 2), f32(ratio_min), f32(tau ** 2),
                    grey_check=False):
                return True
        return False

    def _texture_kept(self, x, p):
        """Brightness around p (5x5) a scaled copy of the background's.

        L = the sum of the frame's channels, M = the sum of the top mean's
        stored codes (mean * 256), integers summed exactly; in grey levels
        (L / 3, M / 768): the fit L = a M leaves an RMS residual of at most
        0.2 of the mean of L, and the normalised cross-correlation is >= 0.4.
        """
        h, wd = self.h, self.wd
        y, xx = divmod(p, wd)
        sx = sb = sxx = sbb = sxb = count = 0
        for yy in range(max(0, y - 2), min(h, y + 3)):
            for xq in range(max(0, xx - 2), min(wd, xx + 3)):
                q = yy * wd + xq
                lx = int(x[q, 0]) + int(x[q, 1]) + int(x[q, 2])
                lb = sum(int(round(float(self.mu[0, ch, q]) * 256)) for ch in range(3))
                sx += lx
                sb += lb
                sxx += lx * lx
                sbb += lb * lb
                sxb += lx * lb
                count += 1
        if sbb <= 0 or sx <= 0:
            return False
        # in grey levels (L / 3, M / 768), with n the count, the fit's RMS
        # residual sqrt(max(LL - LM^2 / MM, 0) / n) <= 0.2 L / n is
        # 25 n (LL MM - LM^2) <= L^2 MM; n^2 times the variances and the
        # covariance are exact integers; the window is flat when the
        # variances' product (in grey levels) is at most 1e-6, and the
        # correlation c / sqrt(vx vb) >= 0.4 is c >= 0 and 25 c^2 >= 4 vx vb.
        # Float64 where the products can pass 2^63, as the kernel computes
        n = float(count)
        if 25.0 * n * (float(sxx) * float(sbb) - float(sxb) * float(sxb)) > (
                float(sx) * float(sx) * float(sbb)):
            return False
        vx = float(count * sxx - sx * sx)
        vb = float(count * sbb - sb * sb)
        if vx * vb <= 1e-6 * 9.0 * 768.0 ** 2 * (n * n) * (n * n):
            return False
        c = float(count * sxb - sx * sb)
        return c >= 0.0 and 25.0 * c * c >= 4.0 * (vx * vb)

    def _own_fg(self, mask, p):
        return (self.flicker[p] >> 15) == 1 and (mask[p] != 0 or self.release[p])

    def _neighbour_pass(self, x, mask):
        """Neighbour match, grey shadows by texture, ghost cells; returns the cells (gh, gw)."""
        cells = np.zeros(self.cells_shape, np.uint8)
        self._orders = {}
        try:
            self._neighbour_pixels(x, mask, cells)
        finally:
            self._orders = None
        return cells

    def _neighbour_pixels(self, x, mask, cells):
        h, wd = self.h, self.wd
        n, c = x.shape
        for p in range(n):
            m = mask[p]
            if m == 0 and not self.release[p]:
                continue
            y, xx = divmod(p, wd)
            if m != 0 and self.radius > 0 and (self.flicker[p] & FLICKER_ONE) >= self.gate:
                value = [f32(x[p, ch]) for ch in range(c)]
                near = [yy * wd + xq
                        for yy in range(max(0, y - self.radius), min(h, y + self.radius + 1))
                        for xq in range(max(0, xx - self.radius), min(wd, xx + self.radius + 1))
                        if (yy, xq) != (y, xx)]
                if any(self._matches_background(q, value) for q in near):
                    mask[p] = 0
                    self.rescued += 1
                    continue
            if m == 255 and self.texture and c == 3:
                if self._grey_darker(x, p) and self._texture_kept(x, p):
                    mask[p] = self.shadow[1]
                    self.textured += 1
            if self.flicker[p] >> 15:
                cells[y // GHOST_CELL, xx // GHOST_CELL] = 1

    def _track_ghosts(self, x, mask, cells):
        """Blobs of cells whose outline is an edge of the background image, not of the frame."""
        h, wd = self.h, self.wd
        n, c = x.shape
        labels = _label_8(cells)
        count = labels.max() + 1
        outline = [0] * count
        pairs = [0] * count
        fsum = [0.0] * count
        msum = [0.0] * count
        w_ref = f32(0.8) * W_ONE
        f_ref = int(0.05 * FLICKER_ONE)
        gh, gw = cells.shape
        for ci in range(gh):
            for cj in range(gw):
                lab = labels[ci, cj]
                if lab == 0:
                    continue
                for y in range(ci * GHOST_CELL, min(h, (ci + 1) * GHOST_CELL)):
                    for xx in range(cj * GHOST_CELL, min(wd, (cj + 1) * GHOST_CELL)):
                        p = y * wd + xx
                        if not self._own_fg(mask, p):
                            continue
                        edge = False
                        for dy in (-1, 0, 1):
                            for dx in (-1, 0, 1):
                                yy, xq = y + dy, xx + dx
                                if (dy, dx) == (0, 0) or not (0 <= yy < h and 0 <= xq < wd):
                                    continue
                                q = yy * wd + xq
                                if self._own_fg(mask, q):
                                    continue
                                edge = True
                                top_code = self.wq[0, q] if self.quantize else self.w[0, q] * W_ONE
                                if (f32(top_code) < w_ref
                                        or (self.flicker[q] & FLICKER_ONE) > f_ref):
                                    continue
                                df = dm = 0.0
                                for ch in range(c):
                                    a = float(x[p, ch]) - float(x[q, ch])
                                    b = float(self.mu[0, ch, p]) - float(self.mu[0, ch, q])
                                    df += a * a
                                    dm += b * b
                                fsum[lab] += math.sqrt(df)
                                msum[lab] += math.sqrt(dm)
                                pairs[lab] += 1
                        if edge:
                            outline[lab] += 1
        frames, _, contrast = self.ghost
        ghost = [lab > 0 and outline[lab] >= 8 and pairs[lab] >= 1 and pairs[lab] >= outline[lab]
                 and fsum[lab] < contrast * msum[lab] for lab in range(count)]
        for ci in range(gh):
            for cj in range(gw):
                self.ghost_run[ci, cj] = self.ghost_run[ci, cj] + 4 if ghost[labels[ci, cj]] else 0
        for p in range(n):
            y, xx = divmod(p, wd)
            self.release[p] = self.ghost_run[y // GHOST_CELL, xx // GHOST_CELL] >= frames

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
        """Mean of ln p(x), p(x) with a uniform outlier term, over the cells' samples.

        Cells of an 8x8 grid (fewer for a frame under 8 rows or columns), cell
        (i, j) spanning rows i h / G .. (i + 1) h / G and columns likewise;
        per cell, 2 runs of 8 pixels on rows y0 + (r + 1) ch / 3, from 4
        left of the cell's centre, clipped to the cell.  The cells' sums and
        counts stay in ``cell_sum`` / ``cell_count``.
        """
        n, c = x.shape
        h, wd = self.h, self.wd
        self.cell_sum = np.zeros(64)
        self.cell_count = np.zeros(64, np.int64)
        gy, gx = min(8, h), min(8, wd)
        for i in range(gy):
            y0, y1 = i * h // gy, (i + 1) * h // gy
            for j in range(gx):
                x0, x1 = j * wd // gx, (j + 1) * wd // gx
                xs = max(x0, (x0 + x1) // 2 - 4)
                for r in range(2):
                    y = y0 + (r + 1) * (y1 - y0) // 3
                    for xx in range(xs, min(x1, xs + 8)):
                        self.cell_sum[i * 8 + j] += self._log_p(x, y * wd + xx)
                        self.cell_count[i * 8 + j] += 1
        return float(self.cell_sum.sum() / self.cell_count.sum())

    def _log_p(self, x, p):
        """ln p(x_p) under the mixture, with the uniform outlier term."""
        c = x.shape[1]
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
        return math.log((1.0 - self.eps) * mix + self.eps * 256.0 ** -c)

    def _recovering(self):
        """A drop of more than recovery_drop below their running averages in recovery_cells
        of the sampled cells starts a recovery."""
        drop, _, frames = self.recovery
        if drop <= 0 or not math.isfinite(self.ll):
            return False
        cells = self.cell_sum / np.maximum(self.cell_count, 1)
        if self.recovery_left == 0 and self.ll_average is not None:
            sampled = self.cell_count > 0
            dropped = (cells < self.ll_average - drop) & sampled
            if dropped.sum() >= self.recovery_cells * sampled.sum():
                self.recovery_left = frames
        if self.recovery_left > 0:
            self.recovery_left -= 1
            if self.recovery_left == 0:
                self.ll_average = None
            return True
        self.ll_average = cells.copy() if self.ll_average is None else (0.9 * self.ll_average
                                                                        + 0.1 * cells)
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

    def foreground_probability_at(self, frame, pixels):
        """foreground_probability at the flat indices *pixels* only (the scan's query)."""
        return self.foreground_probability(frame).reshape(-1)[np.asarray(pixels, np.int64)]

    def _rank_order(self, p):
        """Slots sorted by w/sigma (compared as w^2/sigma^2), descending; stable.

        During the neighbour pass, which changes no state, each pixel's order
        is worked out once (``self._orders``)."""
        if self._orders is None:
            return self._sorted_slots(p)
        if p not in self._orders:
            self._orders[p] = self._sorted_slots(p)
        return self._orders[p]

    def _sorted_slots(self, p):
        keys = [self.w[j, p] * self.w[j, p] / self._rank_variance(j, p) for j in range(self.k)]
        return sorted(range(self.k), key=lambda j: -keys[j]), keys

    def _pixel(self, p, value, alpha, alpha_fg=None):
        c = len(value)
        order, keys = self._rank_order(p)

        # match: the first component in rank order within lambda sigma, lambda
        # widened by the flicker level (the last frame's)
        level = f32(self.flicker[p] & FLICKER_ONE) * f32(1.0 / FLICKER_ONE)
        widen = f32(1.0) + self.lam_gain * max(level - self.lam_from, f32(0.0))
        lam2 = self.lam2 * (widen * widen)
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
            limit = lam2 if self.per_channel else lam2 * self.var[j, 0, p]
            if d2 < limit:
                matched, d2_matched = j, d2
                break

        # background: the first B components in rank order whose cumulative weight exceeds T
        background = self._background_set(p, order)
        foreground = matched is None or matched not in background

        self.last_match[p] = -1 if matched is None else matched
        if alpha is None:
            return 255 if foreground else 0
        self._new_flicker(p, 1 if foreground else 0)
        rate = self._rate(p, foreground, alpha, alpha_fg)
        self._learn(p, value, rate, matched, d2_matched, order, keys)
        self.last_reranked[p] = self._store_in_rank_order(p)
        return 255 if foreground and not self.release[p] else 0

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


def _label_8(cells):
    """Labels 1.. of the 8-connected groups of nonzero cells (0: none), by a plain flood fill."""
    gh, gw = cells.shape
    labels = np.zeros((gh, gw), np.int64)
    count = 0
    for i in range(gh):
        for j in range(gw):
            if cells[i, j] and not labels[i, j]:
                count += 1
                labels[i, j] = count
                todo = [(i, j)]
                while todo:
                    a, b = todo.pop()
                    for da in (-1, 0, 1):
                        for db in (-1, 0, 1):
                            u, v = a + da, b + db
                            if 0 <= u < gh and 0 <= v < gw and cells[u, v] and not labels[u, v]:
                                labels[u, v] = count
                                todo.append((u, v))
    return labels


def _naive_darker_copy(xp, mu, var, j, per_channel, inv_c, lam2, ratio_min, tau2,
                       grey_check=True):
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
        coloured = chroma * inv_c >= tau2 or not grey_check
        close = dist * inv_c < tau2 * a * a
        matches = match * inv_c < lam2
    else:
        coloured = chroma * inv_c >= tau2 * scale or not grey_check
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


# --- the scene detectors' measures of a look (``bgsub.scan.scene``) ----------


class NaiveBlinkGate:
    """The blink gate of ``bgsub.model.postprocess``, written from its description.

    Per pixel a blink level B (0..32767); for each mask, in order:

    * guard: some foreground of the last *output* lies in the square of
      radius ``guard`` around the pixel;
    * b = 1 when the pixel's raw foreground differs from the last mask's, it is
      not guarded, and a mask came before; ``B += (32767 b - B) >> shift``;
    * near: some pixel in the square of radius ``spread`` has B above
      ``int(level * 32767)``; nowhere when more than ``most`` of the frame is near;
    * the pixel's foreground before the opening is the majority of its
      ``blink_size`` window where near, else of its ``median_size`` window
      (or its own value when the median is off); windows replicate the edge.

    :meth:`step` gives that foreground; :meth:`remember` takes the output's.
    """

    def __init__(self, shape, median_size, blink_size, level, guard=4, spread=2, shift=6,
                 most=0.8):
        self.median_size, self.blink_size = median_size, blink_size
        self.threshold = int(level * 32767)
        self.guard, self.spread, self.shift, self.most = guard, spread, shift, most
        self.levels = np.zeros(shape, np.int64)
        self.last_raw = np.zeros(shape, bool)
        self.last_out = np.zeros(shape, bool)
        self.primed = False

    @staticmethod
    def window_count(fg, n):
        """The number of set pixels in each pixel's n x n window, the edge replicated."""
        r = n // 2
        h, w = fg.shape
        padded = np.pad(fg.astype(np.int64), r, mode="edge")
        count = np.zeros((h, w), np.int64)
        for dy in range(n):
            for dx in range(n):
                count += padded[dy:dy + h, dx:dx + w]
        return count

    def step(self, mask):
        fg = mask == 255
        guarded = self.window_count(self.last_out, 2 * self.guard + 1) > 0
        blink = (fg != self.last_raw) & ~guarded & self.primed
        for y, x in np.ndindex(fg.shape):
            b = int(blink[y, x])
            v = int(self.levels[y, x])
            self.levels[y, x] = v + ((b * 32767 - v) >> self.shift)
        near = self.window_count(self.levels > self.threshold, 2 * self.spread + 1) > 0
        if near.sum() > self.most * near.size:  # everywhere: rain, snow, no place
            near = np.zeros_like(near)
        self.near = near
        if self.median_size > 1:
            base = self.window_count(fg, self.median_size) > self.median_size ** 2 // 2
        else:
            base = fg
        wide = self.window_count(fg, self.blink_size) > self.blink_size ** 2 // 2
        self.last_raw = fg
        self.primed = True
        return np.where(near, wide, base)

    def remember(self, out_fg):
        self.last_out = np.asarray(out_fg, bool)


def naive_weather_cells(grey, before, usual, cell=4, busy=0.2, thin=0.5):
    """The weather grid of a look: per cell of ``cell`` x ``cell`` pixels, the pixels
    whose grey level changed by more than 12 since *before*; a cell is changed
    when it has one; isolated when at most two of its 8 neighbours are changed;
    quiet when no cell of its 3 x 3 (itself included) has ``usual > busy``
    (float32 comparison); thin when fewer than ``thin`` of its pixels changed.

    Returns the counts, the changed cells (1.0 / 0.0), and the shares: changed
    and isolated of all cells, thin of the quiet ones (0 when fewer than a tenth
    of the cells are quiet or *usual* is empty).
    """
    h, w = grey.shape
    ch, cw = h // cell, w // cell
    counts = np.zeros((ch, cw), np.int32)
    for y in range(h):
        for x in range(w):
            if abs(float(grey[y, x]) - float(before[y, x])) > 12:
                counts[y // cell, x // cell] += 1
    touched = (counts > 0).astype(np.float32)
    changed = isolated = quiet = thin_cells = 0
    for i in range(ch):
        for j in range(cw):
            neighbours = [(a, b) for a in range(i - 1, i + 2) for b in range(j - 1, j + 2)
                          if 0 <= a < ch and 0 <= b < cw]
            around = sum(counts[a, b] > 0 for a, b in neighbours if (a, b) != (i, j))
            on = counts[i, j] > 0
            changed += on
            isolated += on and around <= 2
            if usual.size and not any(usual[a, b] > np.float32(busy) for a, b in neighbours):
                quiet += 1
                thin_cells += on and counts[i, j] < thin * cell * cell
    share = thin_cells / quiet if usual.size and quiet >= 0.1 * ch * cw else 0.0
    return counts, touched, (changed / (ch * cw), isolated / (ch * cw), share)


def naive_reference_sums(grey, ref):
    """Sum of grey * ref, of ref and of ref squared; the number of pixels with
    16 < ref < 170 and the sums of grey and ref over them (float64)."""
    g = grey.astype(np.float64).ravel()
    r = ref.astype(np.float64).ravel()
    lit = (r > 16) & (r < 170)
    return ((g * r).sum(), r.sum(), (r * r).sum(), int(lit.sum()), g[lit].sum(), r[lit].sum())


def naive_peak_centroid(surface):
    """The first maximum of *surface* (row by row), moved to the quadrant-swapped map
    (``np.fft.fftshift``), and the weighted centroid (x, y) of the 5 x 5 around
    it there, clipped at the map's borders."""
    h, w = surface.shape
    py, px = np.unravel_index(int(np.argmax(surface)), surface.shape)
    swapped = np.fft.fftshift(surface).astype(np.float64)
    sy, sx = (py + h // 2) % h, (px + w // 2) % w
    ys = range(max(sy - 2, 0), min(sy + 2, h - 1) + 1)
    xs = range(max(sx - 2, 0), min(sx + 2, w - 1) + 1)
    total = sum(swapped[y, x] for y in ys for x in xs) + np.finfo(np.float64).eps
    cx = sum(swapped[y, x] * x for y in ys for x in xs) / total
    cy = sum(swapped[y, x] * y for y in ys for x in xs) / total
    return cx, cy
