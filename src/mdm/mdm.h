/* SPDX-License-Identifier: MIT */
/*
 * Master-data rules (DESIGN.md data path, step 4): which fields a flow may write into a
 * record that already exists (system of record, conflict policy, fields_owned_by), when the
 * target's id is written back into the source record, and whether a change that maps to
 * what erpsync already wrote is a plain no-op or the echo of erpsync's own write.
 *
 * The functions here are pure: they read the loaded config and JSON records and never call
 * a connector or the store. The engine's worker asks them, does the I/O, and records the
 * fingerprints they name (docs/architecture.md "Master data").
 *
 * Invariants:
 *  - Ownership is decided per top-level field of the mapped record (the target's field).
 *    A field is owned by system X when fields_owned_by.X lists the target field, the full
 *    target path or the last name of the path of a rule under it, or the source field that
 *    such a rule reads (`from:`). Unlisted fields have no owner.
 *  - On create (the target record is not in the xref yet) everything mapped is written.
 *  - On update a field owned by a system other than the flow's source is never written.
 *  - Fingerprint slots: (entity, system, id) holds the fingerprint of the mapped record that
 *    the flow INTO `system` last wrote there (or knows is there: echo priming);
 *    (entity, "<system>#echo", id) holds the fingerprint a change FROM `system` maps to when
 *    it only carries erpsync's own last write into that record (consumed by the first echo).
 */
#ifndef ES_MDM_MDM_H
#define ES_MDM_MDM_H

#include <jansson.h>
#include <stddef.h>

#include "core/config.h"
#include "core/err.h"

/* One top-level field of a flow's mapped record and the system that owns it. */
struct es_mdm_field {
    char *name;        /* target field (top-level key of the mapped record), owned */
    const char *owner; /* owning system, or NULL (borrowed from the config) */
};

/* What the master-data rules know about one flow (built from the config; borrowed strings). */
struct es_mdm_flow {
    const struct es_config *cfg;
    const struct es_flow_cfg *flow;
    const struct es_entity_cfg *entity;
    int target_is_sor; /* the flow writes INTO the entity's system of record */
    int conflict;      /* enum es_conflict_policy of the entity */
    /* The write-back field when the flow writes the target's id back, else NULL. */
    const char *writeback;
    /* Set when the config asks for a write-back that fields_owned_by forbids (the field
     * is owned by another system than the flow's target): the write-back is not done. */
    char writeback_refused[160];
    /* The reverse flow of a two-way pair (same entity, from/to swapped, enabled), or NULL. */
    const struct es_flow_cfg *reverse;
    size_t nfields;
    struct es_mdm_field *fields; /* fields named by fields_owned_by or by the map */
    int trims;                   /* es_mdm_update_trims(), computed once */
};

/**
 * Builds the rules of flow f of cfg. Never fails (a field list that cannot be read simply
 * has no owners). OUT: mf, release with es_mdm_flow_release(). Thread context: any.
 */
void es_mdm_flow_init(struct es_mdm_flow *mf, const struct es_config *cfg,
                      const struct es_flow_cfg *f);
void es_mdm_flow_release(struct es_mdm_flow *mf);

/** The system owning target field `field` (a top-level key) for this flow, or NULL. */
const char *es_mdm_owner(const struct es_mdm_flow *mf, const char *field);

/** True when an update of this flow may write less than a create (some mapped field is
 *  owned by another system, or the flow writes into the system of record). */
int es_mdm_update_trims(const struct es_mdm_flow *mf);

/** The enabled flow of cfg with the same entity and from/to swapped, or NULL. */
const struct es_flow_cfg *es_mdm_reverse_flow(const struct es_config *cfg,
                                              const struct es_flow_cfg *f);

enum es_mdm_action {
    ES_MDM_WRITE = 0,    /* write the mapped record as it is */
    ES_MDM_WRITE_SUBSET, /* write what is left after dropping fields (rec was changed) */
    ES_MDM_REVIEW,       /* do not write: a review item (ES_ECONFLICT, reason names fields) */
    ES_MDM_SKIP          /* do not write: nothing this flow may change (reason says why) */
};

struct es_mdm_plan {
    enum es_mdm_action action;
    size_t dropped;   /* fields removed from rec */
    char reason[256]; /* for SUBSET, REVIEW and SKIP */
};

/**
 * Decides how a mapped record is written (DESIGN.md step 4: system of record and conflict).
 * exists: the target record is known (xref), i.e. this is an update.
 * current: the target record as it is now, when the caller read it (may be NULL).
 *  - create (exists == 0): ES_MDM_WRITE.
 *  - update: fields owned by a system other than the flow's source are removed from rec.
 *    When the target is the entity's system of record:
 *      conflict source_of_record: only fields owned by the flow's source stay;
 *      conflict review: a remaining field not owned by the source whose value would change
 *        (differs from current; every such field when current is NULL) -> ES_MDM_REVIEW,
 *        reason lists those fields (rec keeps them, for the fingerprint);
 *      conflict last_write_wins: written.
 *    An update left with no field is ES_MDM_SKIP.
 * rec (a JSON object) is changed in place: afterwards it is exactly what may be written,
 * so the caller fingerprints it after this call. Calling again on the result with a
 * current record only revisits the review decision. Thread context: any.
 */
void es_mdm_plan_write(const struct es_mdm_flow *mf, int exists, json_t *rec, const json_t *current,
                       struct es_mdm_plan *out);

/**
 * True when the target id must be written back into the source record: the flow has a
 * write-back field, target_id is known, and the source record (as received) does not
 * already hold exactly target_id in that field.
 */
int es_mdm_writeback_needed(const struct es_mdm_flow *mf, const json_t *source,
                            const char *target_id);

/** The partial record {field: target_id} to update the source with. OUT: json_decref(). */
json_t *es_mdm_writeback_record(const struct es_mdm_flow *mf, const char *target_id);

/**
 * Why a change that maps to the fingerprint already in its target is skipped (returns
 * enum es_skip): ES_SKIP_ECHO when the source record carries exactly erpsync's own last
 * write into it: echo_fp (the "<source>#echo" slot of the record, may be NULL) equals fp
 * and, for a flow with a write-back, the source's write-back field equals target_id.
 * Otherwise ES_SKIP_NOOP.
 */
int es_mdm_skip_kind(const struct es_mdm_flow *mf, const json_t *source, const char *target_id,
                     const char *fp, const char *echo_fp);

/** The fingerprint slot system of erpsync's own writes into `system`: "<system>#echo". */
void es_mdm_echo_system(const char *system, char *out, size_t cap);

#endif
