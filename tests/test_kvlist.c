/* test_kvlist.c — kv_parse_i64_list, the one comma-list parser: values,
 * K suffixes and ranges worked by hand; every malformed list, out-of-range
 * value, wrapped number and overflowing list refused with the name of what
 * was parsed. */
#include <criterion/criterion.h>
#include <string.h>

#include "kv_common.h"

Test(kv_list, values_suffixes_and_ranges)
{
    int64_t v[16];
    kv_err err = {""};
    cr_assert_eq(kv_parse_i64_list("--budget", "256,1024,4K", 1, 1 << 20, 0, v, 16, &err), 3, "%s", err.msg);
    cr_assert(v[0] == 256 && v[1] == 1024 && v[2] == 4096);
    /* 0-3,8 with ranges = 0,1,2,3,8 */
    cr_assert_eq(kv_parse_i64_list("--layers", "0-3,8", 0, 31, 1, v, 16, &err), 5, "%s", err.msg);
    const int64_t want[] = {0, 1, 2, 3, 8};
    for (int i = 0; i < 5; i++) cr_assert_eq(v[i], want[i]);
    cr_assert_eq(kv_parse_i64_list("--layers", "5-5", 0, 31, 1, v, 16, &err), 1);
    cr_assert_eq(v[0], 5);
    /* a range may fill the list exactly */
    cr_assert_eq(kv_parse_i64_list("--layers", "0-15", 0, 31, 1, v, 16, &err), 16);
}

static void refused(const char *s, int64_t lo, int64_t hi, int ranges, int max, const char *needle)
{
    int64_t v[16];
    kv_err err = {""};
    cr_assert_eq(kv_parse_i64_list("--what", s, lo, hi, ranges, v, max, &err), -1, "'%s' accepted", s);
    cr_assert(strstr(err.msg, "--what") && strstr(err.msg, needle), "'%s': %s", s, err.msg);
    cr_assert(!strchr(err.msg, '\n'), "one line: %s", err.msg);
}

Test(kv_list, refusals_name_what_was_parsed)
{
    refused("", 0, 10, 0, 16, "comma list");
    refused("1,,2", 0, 10, 0, 16, "comma list");
    refused("1,2,", 0, 10, 0, 16, "comma list");
    refused("11", 0, 10, 0, 16, "allowed [0, 10]");
    refused("-1", 0, 10, 0, 16, "allowed [0, 10]");
    refused("3x", 0, 10, 0, 16, "3x");
    refused("+1", 0, 10, 0, 16, "expected digits");  /* strtoll would take a sign and blanks */
    refused(" 1", 0, 10, 0, 16, "expected digits");
    refused("1- 3", 0, 10, 1, 16, "expected digits");
    refused("0-3", 0, 10, 0, 16, "0-3");             /* no ranges here */
    refused("4-2", 0, 10, 1, 16, "backwards");
    refused("0-40", 0, 31, 1, 64, "allowed [0, 31]"); /* a range end checked too */
    refused("0-16", 0, 31, 1, 16, "more than 16");
    refused("1,2,3", 0, 10, 0, 2, "more than 2");
    refused("99999999999999999999", 0, INT64_MAX, 0, 16, "99999999999999999999"); /* no wrap */
    refused("9223372036854775807K", 0, INT64_MAX, 0, 16, "K");
}
