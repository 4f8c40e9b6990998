/* test_yaml.c — the strict YAML reader (kv_yaml) and the strict JSON reader
 * (kv_jsonr): structure, typing rules and every error with its line:col. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kv_jsonr.h"
#include "kv_yaml.h"

static int load(kv_yaml_doc *d, const char *text, kv_err *err)
{
    return kv_yaml_load_mem(d, "t.yaml", text, strlen(text), err);
}

/* Loads text, expects failure with exactly msg. */
static void expect_load_error(const char *text, const char *msg)
{
    kv_yaml_doc d;
    kv_err err = {""};
    cr_assert_eq(load(&d, text, &err), -1, "accepted: %s", text);
    cr_assert_null(d.root, "partial result left after an error");
    cr_assert_str_eq(err.msg, msg);
}

Test(kv_yaml, reads_scalars_maps_and_sequences_with_positions)
{
    kv_yaml_doc d;
    kv_err err = {""};
    const char *text = "# comment\n"
                       "name: h100\n"
                       "size: 80e9\n"
                       "table:\n"
                       "  - {run_bytes: 256, efficiency: 0.4}\n"
                       "  - {run_bytes: 512, efficiency: 0.5}\n"
                       "sources:\n"
                       "  size: \"datasheet: 80GB\"\n";
    cr_assert_eq(load(&d, text, &err), 0, "%s", err.msg);
    cr_assert_eq(d.root->kind, KV_YAML_MAP);
    cr_assert_eq(d.root->n, 4);
    cr_assert_eq(d.root->key_line[0], 2);
    cr_assert_eq(d.root->key_col[0], 1);
    const kv_yaml_node *size = kv_yaml_get(d.root, "size");
    cr_assert_eq(size->line, 3);
    cr_assert_eq(size->col, 7);
    int64_t v = 0;
    cr_assert_eq(kv_yaml_int(&d, d.root, "size", 1, 1, INT64_MAX, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(v, 80000000000LL);
    const kv_yaml_node *table = kv_yaml_get(d.root, "table");
    cr_assert_eq(table->kind, KV_YAML_SEQ);
    cr_assert_eq(table->n, 2);
    double eff = 0;
    cr_assert_eq(kv_yaml_num(&d, table->items[1], "efficiency", 1, 0, 1, 1, &eff, &err), 0);
    cr_assert_float_eq(eff, 0.5, 1e-15);
    char src[64];
    const kv_yaml_node *sources = kv_yaml_get(d.root, "sources");
    cr_assert_eq(kv_yaml_str(&d, sources, "size", 1, src, sizeof src, &err), 0);
    cr_assert_str_eq(src, "datasheet: 80GB");
    kv_yaml_free(&d);
    kv_yaml_free(&d); /* twice is harmless */
}

Test(kv_yaml, syntax_error_carries_libyaml_mark)
{
    expect_load_error("a: 1\nb: [1, 2\nc: 3\n",
                      "t.yaml:3:2: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence)");
    expect_load_error("a: 1\n  b: 2\n", "t.yaml:2:4: YAML syntax error: mapping values are not allowed in this context");
}

Test(kv_yaml, structural_errors)
{
    expect_load_error("", "t.yaml:1:1: the file is empty; expected a mapping of 'key: value' lines");
    expect_load_error("# only a comment\n", "t.yaml:1:1: the file is empty; expected a mapping of 'key: value' lines");
    expect_load_error("- 1\n- 2\n", "t.yaml:1:1: expected a mapping of 'key: value' lines at the top level");
    expect_load_error("just words\n", "t.yaml:1:1: expected a mapping of 'key: value' lines at the top level");
    expect_load_error("a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key 'a' (first at line 1)");
    expect_load_error("a: &x 1\nb: *x\n", "t.yaml:2:4: aliases (*name) are not supported; write the value out");
    expect_load_error("a: 1\n---\nb: 2\n", "t.yaml:2:1: more than one YAML document in the file");
    expect_load_error("? [a, b]\n: 1\n", "t.yaml:1:3: mapping keys must be plain words, not a mapping or sequence");
    expect_load_error("a: {b: {c: {d: {e: 1}}}}\n", "t.yaml:1:16: nesting deeper than 4 levels is not supported");
}

Test(kv_yaml, duplicate_key_inside_nested_mapping)
{
    expect_load_error("s:\n  x: 1\n  x: 2\n", "t.yaml:3:3: duplicate key 'x' (first at line 2)");
}

/* Each typed getter on one value; returns the error text ("" when accepted). */
static const char *typed(const char *type, const char *value)
{
    static kv_err err;
    char text[128];
    snprintf(text, sizeof text, "k: %s\n", value);
    kv_yaml_doc d;
    cr_assert_eq(load(&d, text, &err), 0, "%s", err.msg);
    err.msg[0] = '\0';
    int64_t i;
    double x;
    int b;
    char s[8];
    if (!strcmp(type, "pos"))
        kv_yaml_int(&d, d.root, "k", 1, 1, INT32_MAX, &i, &err);
    else if (!strcmp(type, "int"))
        kv_yaml_int(&d, d.root, "k", 1, -5, 5, &i, &err);
    else if (!strcmp(type, "frac"))
        kv_yaml_num(&d, d.root, "k", 1, 0, 1, 1, &x, &err);
    else if (!strcmp(type, "posnum"))
        kv_yaml_num(&d, d.root, "k", 1, 0, 1, INFINITY, &x, &err);
    else if (!strcmp(type, "bool"))
        kv_yaml_bool(&d, d.root, "k", 1, &b, &err);
    else
        kv_yaml_str(&d, d.root, "k", 1, s, sizeof s, &err);
    kv_yaml_free(&d);
    return err.msg;
}

Test(kv_yaml, integers_are_strict)
{
    cr_assert_str_eq(typed("pos", "128"), "");
    cr_assert_str_eq(typed("pos", "1.28e2"), "");
    cr_assert_str_eq(typed("pos", "12x"), "t.yaml:1:4: key 'k': expected a positive integer, got '12x'");
    cr_assert_str_eq(typed("pos", "0"), "t.yaml:1:4: key 'k': expected a positive integer, got '0'");
    cr_assert_str_eq(typed("pos", "-3"), "t.yaml:1:4: key 'k': expected a positive integer, got '-3'");
    cr_assert_str_eq(typed("pos", "1.5"), "t.yaml:1:4: key 'k': expected a positive integer, got '1.5'");
    cr_assert_str_eq(typed("pos", "0x10"), "t.yaml:1:4: key 'k': expected a positive integer, got '0x10'");
    cr_assert_str_eq(typed("pos", "\"128\""),
                     "t.yaml:1:4: key 'k': expected a positive integer, got the quoted string \"128\"");
    cr_assert_str_eq(typed("pos", "[1]"), "t.yaml:1:4: key 'k': expected a positive integer, got a sequence");
    cr_assert_str_eq(typed("pos", "4294967296"),
                     "t.yaml:1:4: key 'k': expected an integer at most 2147483647, got '4294967296'");
    cr_assert_str_eq(typed("pos", "99999999999999999999"),
                     "t.yaml:1:4: key 'k': expected a positive integer, got '99999999999999999999'");
    cr_assert_str_eq(typed("int", "-6"), "t.yaml:1:4: key 'k': expected an integer in [-5, 5], got '-6'");
}

Test(kv_yaml, numbers_bools_and_strings)
{
    cr_assert_str_eq(typed("frac", "0.89"), "");
    cr_assert_str_eq(typed("frac", "1"), "");
    cr_assert_str_eq(typed("frac", "0"), "t.yaml:1:4: key 'k': expected a number in (0, 1], got '0'");
    cr_assert_str_eq(typed("frac", "89%"), "t.yaml:1:4: key 'k': expected a number in (0, 1], got '89%'");
    cr_assert_str_eq(typed("posnum", ".nan"), "t.yaml:1:4: key 'k': expected a positive number, got '.nan'");
    cr_assert_str_eq(typed("posnum", "inf"), "t.yaml:1:4: key 'k': expected a positive number, got 'inf'");
    cr_assert_str_eq(typed("posnum", "1e999"), "t.yaml:1:4: key 'k': expected a positive number, got '1e999'");
    cr_assert_str_eq(typed("bool", "true"), "");
    cr_assert_str_eq(typed("bool", "yes"), "t.yaml:1:4: key 'k': expected true or false, got 'yes'");
    cr_assert_str_eq(typed("bool", "\"true\""),
                     "t.yaml:1:4: key 'k': expected true or false, got the quoted string \"true\"");
    cr_assert_str_eq(typed("str", "abc"), "");
    cr_assert_str_eq(typed("str", "abcdefgh"),
                     "t.yaml:1:4: key 'k': expected a non-empty string of at most 7 bytes, got 'abcdefgh'");
    cr_assert_str_eq(typed("str", "''"), "t.yaml:1:4: key 'k': expected a non-empty string of at most 7 bytes, "
                                          "got the quoted string \"\"");
}

Test(kv_yaml, missing_and_unknown_keys)
{
    kv_yaml_doc d;
    kv_err err = {""};
    cr_assert_eq(load(&d, "hidden_size: 1\nhiden_sise: 2\nsub:\n  a: 1\n", &err), 0);
    int64_t v = 7;
    cr_assert_eq(kv_yaml_int(&d, d.root, "vocab_size", 1, 1, INT64_MAX, &v, &err), -1);
    cr_assert_str_eq(err.msg, "t.yaml:1:1: missing key 'vocab_size'");
    cr_assert_eq(kv_yaml_int(&d, d.root, "vocab_size", 0, 1, INT64_MAX, &v, &err), 0);
    cr_assert_eq(v, 7, "an absent optional key must leave the output alone");
    const kv_yaml_node *sub = kv_yaml_get(d.root, "sub");
    cr_assert_eq(kv_yaml_int(&d, sub, "b", 1, 1, INT64_MAX, &v, &err), -1);
    cr_assert_str_eq(err.msg, "t.yaml:4:3: missing key 'b'");
    const char *const allowed[] = {"hidden_size", "hidden_sizes", "sub", NULL};
    cr_assert_eq(kv_yaml_check_keys(&d, d.root, allowed, &err), -1);
    cr_assert_str_eq(err.msg, "t.yaml:2:1: unknown key 'hiden_sise' (did you mean 'hidden_size'? expected one "
                              "of: hidden_size, hidden_sizes, sub)");
    const char *const far[] = {"num_hidden_layers", "sub", "hidden_size", NULL};
    cr_assert_null(kv_yaml_nearest("tie_word_embeddings", far));
    kv_yaml_free(&d);
}

Test(kv_yaml, missing_file)
{
    kv_yaml_doc d;
    kv_err err = {""};
    cr_assert_eq(kv_yaml_load_file(&d, "tests/data/no-such-file.yaml", &err), -1);
    cr_assert_str_eq(err.msg, "tests/data/no-such-file.yaml: cannot open: No such file or directory");
}

Test(kv_yaml, data_find_names_and_paths)
{
    char out[256];
    kv_err err = {""};
    const char *const known[] = {"a", "b", NULL};
    cr_assert_eq(kv_data_find("models", "/nonexistent", "x/y.yaml", "model", known, out, sizeof out, &err), 0);
    cr_assert_str_eq(out, "x/y.yaml");
    cr_assert_eq(kv_data_find("models", "/nonexistent", "../etc", "model", known, out, sizeof out, &err), 0,
                 "a path with '/' is a path");
    cr_assert_eq(kv_data_find("models", "/nonexistent", "bad name", "model", known, out, sizeof out, &err), -1);
    cr_assert_str_eq(err.msg, "'bad name' is neither a model name (a, b) nor a path to a .yaml file");
    char stem[16];
    kv_path_stem("dir/llama3.1-8b.yaml", stem, sizeof stem);
    cr_assert_str_eq(stem, "llama3.1-8b");
}

/* ---- JSON ---- */
static const char *json_error(const char *text)
{
    static kv_err err;
    kv_jsonr_doc d;
    err.msg[0] = '\0';
    if (kv_jsonr_load_mem(&d, "c.json", text, strlen(text), &err) == 0) {
        kv_jsonr_free(&d);
        return "";
    }
    cr_assert_null(d.root);
    return err.msg;
}

Test(kv_jsonr, reads_values)
{
    const char *text = "\xef\xbb\xbf{\"a\": [1, -2.5e3, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\","
                       " \"o\": {}}";
    kv_jsonr_doc d;
    kv_err err = {""};
    cr_assert_eq(kv_jsonr_load_mem(&d, "c.json", text, strlen(text), &err), 0, "%s", err.msg);
    const kv_jsonr_node *a = kv_jsonr_get(d.root, "a");
    cr_assert_eq(a->kind, KV_JSONR_ARR);
    cr_assert_eq(a->n, 5);
    cr_assert(a->items[0]->is_int);
    cr_assert_not(a->items[1]->is_int);
    cr_assert_float_eq(a->items[1]->num, -2500.0, 1e-12);
    cr_assert_eq(a->items[2]->boolean, 1);
    cr_assert_eq(a->items[4]->kind, KV_JSONR_NULL);
    cr_assert_str_eq(kv_jsonr_get(d.root, "s")->str, "x\xc3\xa9\xf0\x9f\x98\x80\n");
    cr_assert_eq(kv_jsonr_get(d.root, "o")->n, 0);
    cr_assert_null(kv_jsonr_get(d.root, "missing"));
    kv_jsonr_free(&d);
}

Test(kv_jsonr, errors_have_line_and_column)
{
    cr_assert_str_eq(json_error("{\"a\": 1,\n \"b\": 2,\n}"), "c.json:3:1: trailing comma before '}' (not allowed in JSON)");
    cr_assert_str_eq(json_error("[1, 2,]"), "c.json:1:7: trailing comma before ']' (not allowed in JSON)");
    cr_assert_str_eq(json_error("{\"a\": 1 \"b\": 2}"), "c.json:1:9: expected ',' or '}' after an object member, got '\"'");
    cr_assert_str_eq(json_error("{\"a\": 1, \"a\": 2}"), "c.json:1:10: duplicate key \"a\"");
    cr_assert_str_eq(json_error("{\"a\": NaN}"),
                     "c.json:1:7: expected a value (object, array, string, number, true, false or null), got 'N'");
    cr_assert_str_eq(json_error("{\"a\": 01}"), "c.json:1:8: expected ',' or '}' after an object member, got '1'");
    cr_assert_str_eq(json_error("{\"a\": 1.}"), "c.json:1:7: malformed number: digits expected after '.'");
    cr_assert_str_eq(json_error("{\"a\": tru}"),
                     "c.json:1:7: expected a value (object, array, string, number, true, false or null), got 't'");
    cr_assert_str_eq(json_error("\"abc"), "c.json:1:5: unterminated string");
    cr_assert_str_eq(json_error("\"a\tb\""), "c.json:1:3: control character 0x09 in a string (escape it)");
    cr_assert_str_eq(json_error("\"\\ud800x\""), "c.json:1:8: unpaired surrogate in a \\u escape");
    cr_assert_str_eq(json_error("\"\\q\""), "c.json:1:3: invalid escape '\\q' in a string");
    cr_assert_str_eq(json_error("{} {}"), "c.json:1:4: unexpected '{' after the end of the JSON value");
    cr_assert_str_eq(json_error(""), "c.json:1:1: expected a value, got end of file");
    cr_assert_str_eq(json_error("{\"a\"\n\n   1}"), "c.json:3:4: expected ':' after a member name, got '1'");
}

Test(kv_jsonr, depth_is_bounded)
{
    char deep[200];
    memset(deep, '[', 100);
    deep[100] = '\0';
    cr_assert_str_eq(json_error(deep), "c.json:1:65: nesting deeper than 64 levels");
}
