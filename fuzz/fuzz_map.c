/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the mapping engine. The input's first line is an expression, the rest a
 * JSON record: the expression is compiled and evaluated against the record, the record is
 * mapped through a fixed plan that exercises every rule kind (through the fast path and the
 * json_t path), and the raw bytes go through the date parser and the address splitter.
 * Nothing may crash, leak or read out of bounds, whatever the bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/mem.h"
#include "map/internal.h"
#include "map/map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config_text[] =
    "systems: {crm: {connector: memory}, erp: {connector: memory}}\n"
    "tables: {countries: {Germany: DE, France: FR, \"United States\": US}}\n"
    "entities: {customer: {objects: {crm: Account, erp: Customer}}}\n"
    "flows:\n"
    "  f:\n"
    "    entity: customer\n"
    "    from: crm\n"
    "    to: erp\n"
    "    trigger: {poll: 1m}\n"
    "    map:\n"
    "      Name: {from: Name, max_length: 8, on_overflow: truncate, required: true}\n"
    "      Street: {expr: \"address_street(Street, lookup('countries', Country))\"}\n"
    "      No: {expr: \"address_house_number(Street, Country)\"}\n"
    "      Sup: {expr: \"address_supplement(Street, Country)\"}\n"
    "      C: {from: Country, table: countries, unmapped: keep}\n"
    "      D: {from: Date, type: date}\n"
    "      T: {from: Date, type: datetime}\n"
    "      N: {from: Amount, type: decimal}\n"
    "      I: {from: Amount, type: integer}\n"
    "      B: {from: Flag, type: boolean}\n"
    "      F: {expr: \"format_decimal(Amount * 1.19 / 3, 2, ',', '.')\"}\n"
    "      L[*].q: {expr: \"round(Items[*].Q * Items[*].P, 2)\"}\n"
    "      J: {expr: \"join(split(Name, ' '), '-')\"}\n"
    "    schema:\n"
    "      Name: {type: string, required: true, max_length: 6, picklist: [Acme, Globex]}\n";

static struct es_config *cfg;
static struct es_map_plan *plan;

static int xref_any(void *ud, const char *entity, const char *v, char *out, size_t cap)
{
    (void)ud;
    (void)entity;
    if (strlen(v) % 2) {
        return ES_ENOTFOUND;
    }
    snprintf(out, cap, "X%s", v);
    return ES_OK;
}

static void init(void)
{
    struct es_diags d;
    es_diags_init(&d);
    if (es_config_parse("fuzz.yaml", config_text, strlen(config_text), &cfg, &d) == ES_OK) {
        if (es_map_compile(cfg, es_config_flow(cfg, "f"), &plan, &d) != ES_OK) {
            plan = NULL;
        }
    }
    if (!plan) {
        es_diags_print(&d, stderr); /* the harness itself is broken: say so loudly */
        abort();
    }
    es_diags_release(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!cfg) {
        init();
    }
    if (!plan) {
        return 0;
    }
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t elen = nl ? (size_t)(nl - s) : size;
    const char *json = nl ? nl + 1 : "";
    size_t jlen = nl ? size - elen - 1 : 0;
    struct es_map_env env = {xref_any, NULL, 1714569619000LL};
    struct es_map_failure fail;

    /* 1. the expression against the record */
    char *expr = es_xstrndup(s, elen);
    json_t *in = json_loadb(json, jlen, 0, NULL);
    json_t *out = NULL;
    struct es_err err;
    es_err_clear(&err);
    if (es_map_eval_expr(cfg, expr, in, &env, &out, &fail, &err) == ES_OK) {
        json_decref(out);
    }
    es_free(expr);

    /* 2. the record through the plan: fast path and json_t path */
    struct es_buf b;
    es_buf_init(&b, 0);
    if (es_map_eval_json(plan, json, jlen, &b, &env, &fail) == ES_OK) {
        ES_ASSERT(b.len > 0);
    }
    es_buf_release(&b);
    if (in) {
        out = NULL;
        if (es_map_eval(plan, in, &out, &env, &fail) == ES_OK) {
            json_decref(out);
        }
        json_decref(in);
    }

    /* 3. raw bytes as a date and as an address block */
    struct es_date d;
    if (es_date_parse(s, size, NULL, &d) == ES_OK) {
        char tmp[128];
        es_date_format(&d, "salesforce", tmp, sizeof tmp);
        es_date_format(&d, "sap", tmp, sizeof tmp);
    }
    struct es_buf a;
    es_buf_init(&a, 0);
    for (int p = 0; p < 3; p++) {
        es_buf_reset(&a);
        es_addr_split(s, size, "DE", 2, (enum es_addr_part)p, &a);
        es_buf_reset(&a);
        es_addr_split(s, size, NULL, 0, (enum es_addr_part)p, &a);
    }
    es_buf_release(&a);
    return 0;
}
