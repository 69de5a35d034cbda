/* SPDX-License-Identifier: MIT */
/*
 * Pieces of the admin API that need no server: the split of /api/xref/{entity}/{system}/{id}
 * (ids may hold slashes; empty or over-long parts are refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "server/internal.h"

static void test_xref_path(void **state)
{
    (void)state;
    char ent[16], sys[8];
    const char *id = NULL;
    assert_int_equal(es__xref_path("customer/crm/001A", ent, sizeof ent, sys, sizeof sys, &id), 1);
    assert_string_equal(ent, "customer");
    assert_string_equal(sys, "crm");
    assert_string_equal(id, "001A");
    /* The id keeps its slashes (SAP keys, paths). */
    assert_int_equal(es__xref_path("product/erp/A/B/C", ent, sizeof ent, sys, sizeof sys, &id), 1);
    assert_string_equal(sys, "erp");
    assert_string_equal(id, "A/B/C");

    static const char *const bad[] = {"",
                                      "customer",
                                      "customer/crm",
                                      "customer/crm/",
                                      "/crm/1",
                                      "customer//1",
                                      "averyveryverylongentity/crm/1",
                                      "customer/longsystem/1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        id = NULL;
        if (es__xref_path(bad[i], ent, sizeof ent, sys, sizeof sys, &id) != 0) {
            fail_msg("'%s' was accepted", bad[i]);
        }
        assert_null(id);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_xref_path)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
