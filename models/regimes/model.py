"""Streaming regime model: causal DFM factors and labels, one row per replay step.

`RegimeModel.update(row)` filters one step; `run(features, names)` filters a whole
array and gives exactly the same numbers (both go through `_advance`, which runs
the same compiled filter on the rows between two refit points). Refits happen on
the schedule in `RegimeConfig` and only ever see rows before the current one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from models.regimes.config import RegimeConfig
from models.regimes.dfm import DegenerateWindowError, FittedDFM, fit_dfm
from models.regimes.kalman import FilterState, run_filter
from models.regimes.labels import UNKNOWN, label_factors, quantile_thresholds


@dataclass(frozen=True)
class FitRecord:
    """One fit attempt: at which step (rows seen before it), and how it went."""

    step: int
    ok: bool
    em_iterations: int
    message: str


class RegimeModel:
    """Causal block DFM over per-step features, refitted on a schedule.

    Before the first successful fit the factors are NaN and labels UNKNOWN (-1).
    A fit attempt that fails (a series constant or too sparse in the window, or a
    numerical failure in EM) keeps the previous fit and is logged in `fits`.
    """

    def __init__(self, config: RegimeConfig | None = None) -> None:
        self.config = config if config is not None else RegimeConfig()
        self.series = self.config.series
        self.blocks = self.config.block_names
        self.fits: list[FitRecord] = []
        self._fit: FittedDFM | None = None
        self._state: FilterState | None = None
        self._thresholds = np.full((2, len(self.blocks)), np.nan)
        self._n_fits = 0
        self._last_attempt: int | None = None
        self._seen = 0
        self._buffer = np.empty((2 * self.config.fit_window, len(self.series)))
        self._filled = 0

    @property
    def steps_seen(self) -> int:
        return self._seen

    @property
    def fitted(self) -> FittedDFM | None:
        """The current fit (sign-anchored state space, standardisation), if any."""
        return self._fit

    def update(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Filter one step of features (in `self.series` order, NaN = missing).

        Returns (factors, labels), one value per block in `self.blocks` order.
        """
        row = np.asarray(row, dtype=np.float64)
        if row.shape != (len(self.series),):
            raise ValueError(
                f"row: expected {len(self.series)} features {self.series}, got shape {row.shape}"
            )
        factors, _, labels, _ = self._advance(row.reshape(1, -1))
        return factors[0], labels[0]

    def run(self, features: np.ndarray, names: list[str] | tuple[str, ...]) -> dict[str, np.ndarray]:
        """Filter many steps at once; identical to calling `update` row by row.

        Columns: `<block>` (factor, z-scored against the fit window), `<block>_sd`
        (its filtered std on the same scale), `<block>_label`
        (int8) per block, and `fit_id` (index of the fit in use, -1 before the first).
        """
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(names):
            raise ValueError(
                f"features: expected shape (rows, {len(names)}) to match names, "
                f"got {features.shape}"
            )
        names = list(names)
        missing = [s for s in self.series if s not in names]
        extra = [s for s in names if s not in self.series]
        if missing or extra or len(set(names)) != len(names):
            raise ValueError(
                f"names: must be the model's series {list(self.series)} in any order "
                f"(missing {missing}, unknown {extra})"
            )
        ordered = features[:, [names.index(s) for s in self.series]]
        factors, sd, labels, fit_id = self._advance(ordered)
        out: dict[str, np.ndarray] = {}
        for j, b in enumerate(self.blocks):
            out[b] = factors[:, j]
            out[f"{b}_sd"] = sd[:, j]
            out[f"{b}_label"] = labels[:, j]
        out["fit_id"] = fit_id
        return out

    def _advance(
        self, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n, n_blocks = rows.shape[0], len(self.blocks)
        factors = np.full((n, n_blocks), np.nan)
        sd = np.full((n, n_blocks), np.nan)
        labels = np.full((n, n_blocks), UNKNOWN, dtype=np.int8)
        fit_id = np.full(n, -1, dtype=np.int32)
        i = 0
        while i < n:
            if self._refit_due():
                self._refit()
            j = min(n, i + self._steps_to_next_attempt())
            segment = rows[i:j]
            if self._fit is not None and self._state is not None:
                fit = self._fit
                states, variances = run_filter(
                    fit.ss, self._state, (segment - fit.mean) / fit.std
                )
                factors[i:j] = (states[:, fit.factor_index] - fit.factor_mean) / fit.factor_std
                sd[i:j] = np.sqrt(variances[:, fit.factor_index]) / fit.factor_std
                labels[i:j] = label_factors(factors[i:j], self._thresholds)
                fit_id[i:j] = self._n_fits - 1
            self._remember(segment)
            i = j
        return factors, sd, labels, fit_id

    def _refit_due(self) -> bool:
        return self._steps_to_next_attempt() == 0

    def _steps_to_next_attempt(self) -> int:
        if self._last_attempt is None:
            return max(self.config.min_history - self._seen, 0)
        return max(self._last_attempt + self.config.refit_every - self._seen, 0)

    def _refit(self) -> None:
        self._last_attempt = self._seen
        window = self._buffer[max(0, self._filled - self.config.fit_window) : self._filled]
        start = self._fit.params if self._fit is not None else None
        try:
            # one BLAS thread: EM's reductions then sum in one order whatever else the process runs
            with threadpool_limits(limits=1, user_api="blas"):
                fit = fit_dfm(window, self.config, start_params=start)
        except (DegenerateWindowError, np.linalg.LinAlgError) as exc:
            self.fits.append(FitRecord(self._seen, False, 0, str(exc)))
            return
        self._fit = fit
        self._state = fit.end_state.copy()
        self._thresholds = quantile_thresholds(fit.window_factors, self.config.label_quantiles)
        self._n_fits += 1
        self.fits.append(FitRecord(self._seen, True, fit.em_iterations, "ok"))

    def _remember(self, rows: np.ndarray) -> None:
        """Keep the last `fit_window` raw rows for the next fit."""
        cap = self._buffer.shape[0]
        keep = self.config.fit_window
        if self._filled + rows.shape[0] > cap:
            tail = np.concatenate([self._buffer[: self._filled], rows])[-keep:]
            self._buffer[: tail.shape[0]] = tail
            self._filled = tail.shape[0]
        else:
            self._buffer[self._filled : self._filled + rows.shape[0]] = rows
            self._filled += rows.shape[0]
        self._seen += rows.shape[0]
