"""GA4GH service-info, the dataset description, its variant list and the catalogue."""

from __future__ import annotations

from fastapi import APIRouter, Response

from genofed._version import __version__
from genofed.node.deps import Caller, Dataset, Settings
from genofed.node.disclosure import reported_count
from genofed.protocol.codec import ARRAY_MEDIA_TYPE, encode_arrays
from genofed.protocol.computations import CATALOGUE
from genofed.protocol.messages import (
    Computation,
    DatasetDescription,
    Organization,
    ServiceInfo,
    ServiceType,
)

router = APIRouter(tags=["info"])


@router.get("/service-info")
def service_info(settings: Settings) -> ServiceInfo:
    """Describe this node as a GA4GH service."""
    return ServiceInfo(
        id=f"org.genofed.node.{settings.node.name.lower()}",
        name=f"genofed node {settings.node.name}",
        type=ServiceType(group="org.genofed", artifact="genofed-node", version="1.0.0"),
        description=f"Aggregate computations over dataset {settings.node.dataset_id}",
        organization=Organization(name=settings.node.name, url=settings.url),
        version=__version__,
    )


@router.get("/dataset")
def dataset(settings: Settings, data: Dataset, caller: Caller) -> DatasetDescription:
    """Describe the data by counts and column names; never a value of one person."""
    return DatasetDescription(
        dataset_id=settings.node.dataset_id,
        node=settings.node.name,
        genotyped_samples=reported_count(len(data.iids), settings.disclosure),
        phenotyped_samples=reported_count(data.phenotyped_samples, settings.disclosure),
        variants=len(data.variants),
        variant_digest=data.variant_digest,
        phenotypes=list(data.table.columns),
        block_size=settings.compute.block_size,
        covariate_sets=data.covariate_sets.describe(),
    )


@router.get("/dataset/variants", response_class=Response)
def variants(data: Dataset, caller: Caller) -> Response:
    """Send the variant list (chromosome, position, id, counted and other allele)."""
    v = data.variants
    payload = encode_arrays(
        {
            "chromosome": v.chromosome,
            "base_pair_location": v.bp_position,
            "variant_id": v.variant_id,
            "effect_allele": v.allele_1,
            "other_allele": v.allele_2,
        }
    )
    return Response(payload, media_type=ARRAY_MEDIA_TYPE)


@router.get("/catalogue")
def catalogue() -> list[Computation]:
    """List the computations this node runs; nothing else can be run."""
    return list(CATALOGUE)
