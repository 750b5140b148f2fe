"""Exact logistic regression GWAS with PLINK 2's Firth fallback, split for a federation.

The node side (``local_*``) sums over its own samples; the coordinator adds
the sums of every node and runs PLINK 2's algorithm (:func:`fit_logistic`).
Each variant is fitted on the samples with a called genotype at that variant
only, as PLINK drops them. The design is ``X = [C, g]``: the covariates ``C``
with the intercept first, then the ALT allele count ``g``; coefficient vectors
and the packed information triangles follow that order.

* :mod:`~genofed.kernels.logistic.sums`: the node side. A node's samples
  (:func:`logistic_design`) and block of variants (:func:`logistic_block`),
  and its answer to one round trip (:func:`local_round`: the
  :class:`LogisticSums` and :class:`FirthSums` of a :class:`RoundRequest`),
  with the node's cost per round.
* :mod:`~genofed.kernels.logistic.fit`: the coordinator's solver, PLINK 2's
  rules for ``plink2 --glm`` with their source references, and how this
  double-precision version differs. :class:`LogisticFit` is the solver
  driven one round trip at a time (:meth:`~LogisticFit.request`,
  :meth:`~LogisticFit.advance`), so that a node can replay it to verify
  every parameter it is sent; :func:`fit_logistic` runs it with the round
  trip as a callable.
* :mod:`~genofed.kernels.logistic.score`: a faster, different test. The
  covariates-only model (:class:`NullLogisticFitter`,
  :func:`fit_null_logistic`), a score test per variant in one pass
  (:func:`score_test`), and the variants to refit exactly
  (:func:`variants_to_refine`).

Every name is importable from this package.
"""

from genofed.kernels.logistic._linalg import unpack_symmetric
from genofed.kernels.logistic.fit import (
    CONST_OMITTED_ALLELE,
    CORR_TOO_HIGH,
    FIRTH_CONVERGE_FAIL,
    INVALID_RESULT,
    LOGISTIC_CONVERGE_FAIL,
    OK,
    SAMPLE_CT_LTE_PREDICTOR_CT,
    SEPARATION,
    UNFINISHED,
    VIF_INFINITE,
    VIF_TOO_HIGH,
    FirthMode,
    LogisticFit,
    LogisticResult,
    concatenate_results,
    fit_logistic,
)
from genofed.kernels.logistic.score import (
    MissingScoreSums,
    NullLogisticFit,
    NullLogisticFitter,
    NullLogisticSums,
    ScoreResult,
    ScoreSums,
    fit_null_logistic,
    local_missing_score_sums,
    local_null_logistic_sums,
    local_score_sums,
    score_test,
    variants_to_refine,
)
from genofed.kernels.logistic.sums import (
    CovariateRanges,
    FirthSums,
    LogisticBlock,
    LogisticDesign,
    LogisticSums,
    RoundRequest,
    RoundSums,
    covariates_separate,
    local_covariate_ranges,
    local_firth_sums,
    local_logistic_sums,
    local_round,
    logistic_block,
    logistic_design,
)

__all__ = [
    "CONST_OMITTED_ALLELE",
    "CORR_TOO_HIGH",
    "FIRTH_CONVERGE_FAIL",
    "INVALID_RESULT",
    "LOGISTIC_CONVERGE_FAIL",
    "OK",
    "SAMPLE_CT_LTE_PREDICTOR_CT",
    "SEPARATION",
    "UNFINISHED",
    "VIF_INFINITE",
    "VIF_TOO_HIGH",
    "CovariateRanges",
    "FirthMode",
    "FirthSums",
    "LogisticBlock",
    "LogisticDesign",
    "LogisticFit",
    "LogisticResult",
    "LogisticSums",
    "MissingScoreSums",
    "NullLogisticFit",
    "NullLogisticFitter",
    "NullLogisticSums",
    "RoundRequest",
    "RoundSums",
    "ScoreResult",
    "ScoreSums",
    "concatenate_results",
    "covariates_separate",
    "fit_logistic",
    "fit_null_logistic",
    "local_covariate_ranges",
    "local_firth_sums",
    "local_logistic_sums",
    "local_missing_score_sums",
    "local_null_logistic_sums",
    "local_round",
    "local_score_sums",
    "logistic_block",
    "logistic_design",
    "score_test",
    "unpack_symmetric",
    "variants_to_refine",
]
