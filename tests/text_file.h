/* text_file.h — writes a test's input file: path gets text, the test fails if it cannot. */
#ifndef KVSIM_TESTS_TEXT_FILE_H
#define KVSIM_TESTS_TEXT_FILE_H

#include <criterion/criterion.h>
#include <stdio.h>

static inline void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    cr_assert_not_null(fp, "%s: cannot write", path);
    fputs(text, fp);
    fclose(fp);
}

#endif
