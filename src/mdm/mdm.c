/* SPDX-License-Identifier: MIT */
/*
 * Master-data rules as pure functions over the config and JSON records: field ownership
 * (fields_owned_by), the system-of-record and conflict policy of an update, the write-back
 * of the target's id, and the echo/no-op classification of skipped changes. The worker
 * (src/engine/worker.c) does the I/O around them; mdm.h states the semantics.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/mem.h"
#include "core/node.h"
#include "mdm/mdm.h"
#include "store/store.h"

/* Length of the first segment of a target path ("a[0].b" -> 1, "a.b" -> 1). */
static size_t top_len(const char *path)
{
    return strcspn(path, ".[");
}

/* The last name of a path: "to_Customer.CreditLimit" -> "CreditLimit" (length in *len). */
static const char *leaf(const char *path, size_t *len)
{
    const char *dot = strrchr(path, '.');
    const char *s = dot ? dot + 1 : path;
    *len = strcspn(s, "[");
    return s;
}

static int list_has(const struct es_cfg_strlist *l, const char *name, size_t len)
{
    for (size_t i = 0; i < l->count; i++) {
        if (l->items[i] && strlen(l->items[i]) == len && strncmp(l->items[i], name, len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The system whose fields_owned_by list names `name` (len bytes), or NULL. */
static const char *owner_of(const struct es_entity_cfg *ent, const char *name, size_t len)
{
    if (!name || len == 0) {
        return NULL;
    }
    for (size_t i = 0; i < ent->nowned; i++) {
        if (list_has(&ent->owned[i].fields, name, len)) {
            return ent->owned[i].system;
        }
    }
    return NULL;
}

/* The owner named for one map rule (target path + its value node), or NULL. */
static const char *rule_owner(const struct es_entity_cfg *ent, const char *path,
                              const struct es_node *val)
{
    const char *o = owner_of(ent, path, top_len(path));
    if (!o) {
        o = owner_of(ent, path, strlen(path));
    }
    if (!o) {
        size_t n;
        const char *l = leaf(path, &n);
        o = owner_of(ent, l, n);
    }
    const struct es_node *from = NULL;
    if (val && val->kind == ES_NODE_SCALAR && !val->is_null) {
        from = val; /* `Target: SourceField` shorthand */
    } else if (val && val->kind == ES_NODE_MAP) {
        from = es_node_get(val, "from");
    }
    if (!o && from && from->kind == ES_NODE_SCALAR && from->str) {
        o = owner_of(ent, from->str, top_len(from->str));
    }
    return o;
}

const struct es_flow_cfg *es_mdm_reverse_flow(const struct es_config *cfg,
                                              const struct es_flow_cfg *f)
{
    for (size_t i = 0; cfg && f && i < cfg->nflows; i++) {
        const struct es_flow_cfg *r = &cfg->flows[i];
        if (r != f && r->enabled && r->entity_idx == f->entity_idx && r->from_idx == f->to_idx &&
            r->to_idx == f->from_idx) {
            return r;
        }
    }
    return NULL;
}

void es_mdm_flow_init(struct es_mdm_flow *mf, const struct es_config *cfg,
                      const struct es_flow_cfg *f)
{
    memset(mf, 0, sizeof *mf);
    mf->cfg = cfg;
    mf->flow = f;
    mf->entity = &cfg->entities[f->entity_idx];
    const struct es_entity_cfg *ent = mf->entity;
    mf->target_is_sor = ent->system_of_record && strcmp(ent->system_of_record, f->to) == 0;
    mf->conflict = ent->conflict;
    mf->reverse = es_mdm_reverse_flow(cfg, f);
    if (f->writeback.field && f->writeback.field[0]) {
        const char *o = owner_of(ent, f->writeback.field, strlen(f->writeback.field));
        if (o && strcmp(o, f->to) != 0) {
            snprintf(mf->writeback_refused, sizeof mf->writeback_refused,
                     "write-back field %s is owned by %s (fields_owned_by), not by %s",
                     f->writeback.field, o, f->to);
        } else {
            mf->writeback = f->writeback.field;
        }
    }
    mf->trims = mf->target_is_sor;
    const struct es_node *map = f->map;
    if (!map || map->kind != ES_NODE_MAP || map->count == 0) {
        return;
    }
    mf->fields = es_xcalloc(map->count, sizeof *mf->fields);
    for (size_t i = 0; i < map->count; i++) {
        const char *path = map->pairs[i].key ? map->pairs[i].key->str : NULL;
        if (!path || !path[0]) {
            continue;
        }
        size_t tl = top_len(path);
        const char *o = rule_owner(ent, path, map->pairs[i].value);
        struct es_mdm_field *fld = NULL;
        for (size_t k = 0; k < mf->nfields; k++) {
            if (strlen(mf->fields[k].name) == tl && strncmp(mf->fields[k].name, path, tl) == 0) {
                fld = &mf->fields[k];
                break;
            }
        }
        if (!fld) {
            fld = &mf->fields[mf->nfields++];
            fld->name = es_xmalloc(tl + 1);
            memcpy(fld->name, path, tl);
            fld->name[tl] = '\0';
        }
        if (!fld->owner) {
            fld->owner = o;
        }
    }
    mf->trims = es_mdm_update_trims(mf);
}

void es_mdm_flow_release(struct es_mdm_flow *mf)
{
    if (!mf) {
        return;
    }
    for (size_t i = 0; i < mf->nfields; i++) {
        es_free(mf->fields[i].name);
    }
    es_free(mf->fields);
    mf->fields = NULL;
    mf->nfields = 0;
}

const char *es_mdm_owner(const struct es_mdm_flow *mf, const char *field)
{
    for (size_t i = 0; i < mf->nfields; i++) {
        if (strcmp(mf->fields[i].name, field) == 0) {
            return mf->fields[i].owner;
        }
    }
    return owner_of(mf->entity, field, strlen(field));
}

int es_mdm_update_trims(const struct es_mdm_flow *mf)
{
    if (mf->target_is_sor) {
        return 1;
    }
    for (size_t i = 0; i < mf->nfields; i++) {
        if (mf->fields[i].owner && strcmp(mf->fields[i].owner, mf->flow->from) != 0) {
            return 1;
        }
    }
    return 0;
}

/* Appends ", name" (or "name") to the bounded list text. */
static void name_add(char *list, size_t cap, const char *name)
{
    size_t len = strlen(list);
    if (len + 2 >= cap) {
        return;
    }
    snprintf(list + len, cap - len, "%s%s", len ? ", " : "", name);
}

void es_mdm_plan_write(const struct es_mdm_flow *mf, int exists, json_t *rec, const json_t *current,
                       struct es_mdm_plan *out)
{
    memset(out, 0, sizeof *out);
    out->action = ES_MDM_WRITE;
    if (!exists || !json_is_object(rec) || !mf->trims) {
        return; /* nothing owned by others, not into the system of record: write as mapped */
    }
    const char *src = mf->flow->from;
    const int sor_only = mf->target_is_sor && mf->conflict == ES_CONFLICT_SOURCE_OF_RECORD;
    char dropped[160] = "", contested[160] = "";
    size_t ncontested = 0;
    const char *key;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(rec, tmp, key, val)
    {
        const char *o = es_mdm_owner(mf, key);
        int mine = o && strcmp(o, src) == 0;
        if (o && !mine) {
            /* Owned by another system (usually the target itself): never overwritten. */
            name_add(dropped, sizeof dropped, key);
            json_object_del(rec, key);
            out->dropped++;
        } else if (sor_only && !mine) {
            name_add(dropped, sizeof dropped, key);
            json_object_del(rec, key);
            out->dropped++;
        } else if (mf->target_is_sor && mf->conflict == ES_CONFLICT_REVIEW && !mine &&
                   !(current && json_equal(val, json_object_get(current, key)))) {
            name_add(contested, sizeof contested, key);
            ncontested++;
        }
    }
    const char *to = mf->flow->to;
    if (ncontested) {
        out->action = ES_MDM_REVIEW;
        snprintf(out->reason, sizeof out->reason,
                 "conflict: %s is the system of record of %s and the update would change %s "
                 "(not owned by %s)",
                 to, mf->entity->name, contested, src);
    } else if (json_object_size(rec) == 0) {
        out->action = ES_MDM_SKIP;
        if (sor_only) {
            snprintf(out->reason, sizeof out->reason,
                     "skipped: %s is the system of record of %s; %s owns no mapped field", to,
                     mf->entity->name, src);
        } else {
            snprintf(out->reason, sizeof out->reason,
                     "skipped: every mapped field is owned by another system (%s)", dropped);
        }
    } else if (out->dropped) {
        out->action = ES_MDM_WRITE_SUBSET;
        snprintf(out->reason, sizeof out->reason, "not written (owned by %s): %s",
                 sor_only ? to : "another system", dropped);
    }
}

int es_mdm_writeback_needed(const struct es_mdm_flow *mf, const json_t *source,
                            const char *target_id)
{
    if (!mf->writeback || !target_id || !target_id[0]) {
        return 0;
    }
    const char *have = json_string_value(json_object_get(source, mf->writeback));
    return !have || strcmp(have, target_id) != 0;
}

json_t *es_mdm_writeback_record(const struct es_mdm_flow *mf, const char *target_id)
{
    json_t *r = json_object();
    if (mf->writeback && target_id) {
        json_object_set_new(r, mf->writeback, json_string(target_id));
    }
    return r;
}

int es_mdm_skip_kind(const struct es_mdm_flow *mf, const json_t *source, const char *target_id,
                     const char *fp, const char *echo_fp)
{
    if (!fp || !echo_fp || strcmp(fp, echo_fp) != 0) {
        return ES_SKIP_NOOP;
    }
    if (mf->writeback && target_id) {
        const char *have = json_string_value(json_object_get(source, mf->writeback));
        if (!have || strcmp(have, target_id) != 0) {
            return ES_SKIP_NOOP;
        }
    }
    return ES_SKIP_ECHO;
}

void es_mdm_echo_system(const char *system, char *out, size_t cap)
{
    snprintf(out, cap, "%s#echo", system ? system : "");
}
