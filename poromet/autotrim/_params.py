"""Tuning constants of the automatic trimming (shared by its modules)."""

#: Image sides a stack can lie against.
SIDES = ("top", "bottom", "left", "right")

_WORK_PX = 512          # longest side of the working image
_STREAK_ROWS = 9        # vertical median against 1-3-row scan-line streaks (full-res rows)
_MAX_DEPTH = 0.62       # deepest boundary searched, fraction of the across size
_N_STRIPS = 8           # strips along a side (independent estimates of each step)
_QUANTILES = (0.15, 0.5, 0.85)
_WL = 0.02              # stack-side window, fraction of the across size
_GRAD_SIGMA = 1.5       # smoothing before the texture gradients (working px)
_COARSE_SIGMA = 4.0     # smoothing for the coarse variation along the band (working px)
_COARSE_STEP = 8        # ... compared over this distance along the band
_WR = 0.12              # exterior-side window (the exterior is wide and homogeneous)
_ACCEPT_T = 4.5         # across-strip t statistic (RMS over features) of an interface
_OUTER_T = 3.5         # statistic of the outermost interface once a stack is accepted
_OUTER_COVER = 0.85     # ... and share of strips agreeing on it
_OUTER_RATIO = 1.3      # ... and this many times the largest statistic beyond it
_OUTER_CONS = 0.9        # ... and consistency of its step over the strips
_KNOWN_CONS = 0.85      # ... in a view re-tracked along that interface itself
_LOCAL_SE = 0.7         # weight of the local (per-depth) spread over strips
_RELATIVE_T = 3.8       # a weaker interface is accepted when its side stands out:
_RELATIVE_RATIO = 1.4   # ... this many times the statistic of every other side
_SECOND_T = 12.0        # statistic needed to keep a second side
_ACCEPT_COVER = 0.6     # share of strips whose own step agrees
_CONSISTENT = 0.6       # |mean step vector| / mean |step vector| over the strips
_SE_FLOOR = 0.003       # smallest standard error of a step (grey levels of the 1-99 % range)
_WAVE_TOL = 0.06        # per-strip search around the common depth, fraction of the across size
_SHALLOW = 0.07         # a stack thinner than this (fraction across) is unsure
_EXTRA_PX = 1.0         # extra working pixels cut beyond the outermost interface
_ORI_GRAD = 1.0         # smoothing before the structure tensor (working px)
_ORI_INT = 3.0          # integration scale of the structure tensor (working px)
_ORI_LAYERED = 0.25     # excess orientation (across minus along, over the exterior's) of a layered band
_ORI_END = 0.5          # ... the band ends where the excess falls below this share of _ORI_LAYERED
_ORI_GAP = 0.025        # gaps (fraction across) a band may have (e.g. a current collector)
_ORI_MIN = 0.05         # thinnest layered band taken on orientation alone (fraction across)
_ORI_COVER = 0.75       # ... and share of strips that must show it
_ORI_SUPPORT_T = 2.0    # ... and a texture change on its side of at least this statistic
                        # (sides of homogeneous fields show 2-2.7; true bands cut on
                        # orientation alone 2.5-4.5: the band is of other material)
_TRACK_ROWS = 8         # lines per fine strip when an interface is tracked along the side
_TRACK_JUMP = 2         # ... largest move (working px) of the interface between fine strips
_TRACK_ENVELOPE = 16    # upper envelope of a tracked boundary over 1/this of the side
_RETRACK = 1.0          # largest correction (x wave tolerance) when a deeper candidate is re-tracked
_NEAR_HALF = 0.45       # a side whose deep reading (boundary beyond the middle) failed is
                        # looked at again up to this depth (fraction across): the band
                        # must leave the margin and the envelope inside the near half
_EVIDENCE_T = 7.0       # a side with an interface this clear needs no other evidence of layers
_EVIDENCE_ORI = 0.12    # orientation excess of a band over the exterior beside it (layers)
_SMOOTH_COARSE = 0.5    # a smooth layer: coarse variation along the side below this x the exterior's
_SMOOTH_GRAD = 0.6      # ... and gradient energy along the side below this x the exterior's
_SMOOTH_MIN = 0.012     # ... over at least this depth (fraction of the across size)
_BRIGHT_MIN = 0.03      # depth of bright dense layers (a collector) taken as evidence (fraction across)
_EVEN_MIN = 0.25        # a band cut on smooth layers alone whose strips show the step this
                        # unevenly (smallest over median projection, :func:`_step_evenness`)
                        # is unsure (_MISSED_CONF): false stacks at pore-cluster edges of 25
                        # cached seeds -0.6-0.08 (3 of 7), true stacks 0.29-0.86 (one of 19
                        # at -0.11, two strips without a step)
_MISSED_CONF = 0.45     # confidence of "no stack" when a weaker interface bounds a band with
                        # layers that was not cut: below the flag level (trim.min_confidence
                        # 0.5), as at the acceptance level itself
_DENSE_T = 2.5          # a weak interface beyond the band found, taken as the outer boundary
                        # when the zone up to it is a layer of other material:
_DENSE_UNIFORM = 0.5    # ... the zone's features vary along the side (over strips) less than
                        # this x those of exterior windows of the same width (a layer is
                        # uniform, a sparse patch of the cover is not)
_DENSE_TEXTURE = 0.65   # ... its gradient energy is below this x the exterior's (few pores)
_DENSE_SOLID = 0.08     # ... and its solid grey level (upper quantile) differs from the
                        # exterior's by this much (grey levels of the 1-99 % range)
_COVER_T = 7.0          # an outer interface weaker than this (_EVIDENCE_T: a clear change of
                        # material) is checked for the exterior's own material before it:
_COVER_SOLID = 0.04     # ... the zone's solid grey level (upper quantile) within this of the
                        # exterior's (grey levels of the 1-99 % range) ...
_COVER_UNIFORM = 1.0    # ... and its features varying along the side (over strips) at least
                        # this x those of exterior windows of its width: a pore cluster of the
                        # cover ends there, not a layer (a stack layer's fine pores are
                        # uniform along it)
_COVER_WIDTH = 0.08     # ... a zone at least this wide (fraction across): beyond the wave
                        # tolerance (_WAVE_TOL) of its interfaces, whose per-strip depths
                        # would mix the neighbouring layers into a thinner zone (zones of
                        # 0.02-0.06 inside stacks were taken for cover, cluster zones 0.1-0.3)
