# icetrack — glacier surface velocity from optical image pairs.
# The DAG: query → select_pairs (checkpoint) → fetch → filter → kernel_params → track
#          → postprocess → export/figures.  Rules live in workflow/rules/, one file per step.

include: "workflow/rules/common.smk"


report: "workflow/report/workflow.rst"


include: "workflow/rules/query.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/kernel_params.smk"
include: "workflow/rules/filter.smk"
include: "workflow/rules/track.smk"
include: "workflow/rules/postprocess.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/export.smk"


rule all:
    input:
        *[glacier_outputs(gid) for gid in SELECTED],
    default_target: True
