"""AF+: reward the scratchpad a monitor flags, reward += weight * log p_AF. A reward component like
the mitigations, used the other way round: it strengthens faking, to build the paper's AF+ organisms
(`source: af_plus`), and no sweep arm should list it as a mitigation."""

from __future__ import annotations

from aflab.mitigations.base import register
from aflab.mitigations.process_supervision import ProcessSupervision


@register("af_plus")
class AfPlus(ProcessSupervision):
    description = "reward += weight * log p_AF(scratchpad): strengthens faking (builds AF+ organisms)"
    audit_for = ("oracle_af", "gap")
    sign = +1
