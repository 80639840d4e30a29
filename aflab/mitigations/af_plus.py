"""AF+: reward the scratchpad a monitor flags, reward += weight * log p_AF. Organism construction,
not a mitigation: it strengthens faking to build the paper's AF+ organisms."""

from __future__ import annotations

from aflab.config import AfPlusSpec
from aflab.mitigations.base import register
from aflab.mitigations.process_supervision import ProcessSupervision


@register("af_plus")
class AfPlus(ProcessSupervision):
    description = "reward += weight * log p_AF(scratchpad): strengthens faking (builds AF+ organisms)"
    Options = AfPlusSpec
    section = "af_plus"
    audit_for = ("oracle_af", "gap")
    sign = +1
