/* test_dtype.c — refimpl storage formats: round-to-nearest-even conversion
 * with worked bit patterns, exhaustive decode/encode round trips, overflow
 * and saturation rules. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "rkv.h"

Test(dtype, bf16_round_to_nearest_even)
{
    /* 1 + 2^-8 lies exactly halfway between bf16 1.0 (0x3f80) and 1 + 2^-7
     * (0x3f81): ties go to the even mantissa, 0x3f80. */
    cr_assert_eq(rkv_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);
    /* 1 + 3·2^-8 is halfway between 0x3f81 and 0x3f82: even is 0x3f82. */
    cr_assert_eq(rkv_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);
    /* just above the tie rounds up */
    cr_assert_eq(rkv_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    cr_assert_eq(rkv_f32_to_bf16(-2.5f), 0xc020);
    cr_assert(isnan(rkv_bf16_to_f32(rkv_f32_to_bf16(NAN))));
    cr_assert_eq(rkv_f32_to_bf16(INFINITY), 0x7f80);
}

Test(dtype, fp16_worked_values)
{
    cr_assert_eq(rkv_f32_to_fp16(1.0f), 0x3c00);
    cr_assert_eq(rkv_f32_to_fp16(65504.0f), 0x7bff);          /* largest finite */
    cr_assert_eq(rkv_f32_to_fp16(65519.0f), 0x7bff);          /* below the tie */
    cr_assert_eq(rkv_f32_to_fp16(65520.0f), 0x7c00);          /* tie to even -> inf */
    cr_assert_eq(rkv_f32_to_fp16(0x1p-24f), 0x0001);          /* smallest subnormal */
    cr_assert_eq(rkv_f32_to_fp16(0x1p-25f), 0x0000);          /* tie to even -> 0 */
    cr_assert_eq(rkv_f32_to_fp16(0x1.8p-24f), 0x0002);        /* 1.5 ulp: tie -> even 2 */
    cr_assert_eq(rkv_f32_to_fp16(-0.333251953125f), 0xb555);  /* exactly representable */
    cr_assert_eq(rkv_f32_to_fp16(1.0f + 0x1p-11f), 0x3c00);   /* tie between 0x3c00 and 0x3c01 */
}

Test(dtype, fp8_worked_values)
{
    cr_assert_eq(rkv_f32_to_e4m3(448.0f), 0x7e);    /* max finite S.1111.110 */
    cr_assert_eq(rkv_f32_to_e4m3(1000.0f), 0x7e);   /* saturates */
    cr_assert_eq(rkv_f32_to_e4m3(-INFINITY), 0xfe);
    cr_assert_eq(rkv_f32_to_e4m3(0x1p-9f), 0x01);   /* min subnormal */
    cr_assert_eq(rkv_f32_to_e4m3(0x1p-10f), 0x00);  /* tie -> even 0 */
    cr_assert_eq(rkv_f32_to_e4m3(1.0f), 0x38);
    cr_assert_eq(rkv_f32_to_e4m3(1.0625f), 0x38);   /* 1 + 1/16: tie between 1 and 1.125 -> even */
    cr_assert_eq(rkv_f32_to_e4m3(1.1875f), 0x3a);   /* tie between 1.125 and 1.25 -> even 1.25 */
    cr_assert(isnan(rkv_e4m3_to_f32(0x7f)));
    cr_assert_eq(rkv_f32_to_e5m2(57344.0f), 0x7b);  /* max finite */
    cr_assert_eq(rkv_f32_to_e5m2(61440.0f), 0x7c);  /* tie to even -> inf */
    cr_assert_eq(rkv_f32_to_e5m2(0x1p-16f), 0x01);
    cr_assert_eq(rkv_f32_to_e5m2(1.0f), 0x3c);
    cr_assert_eq(rkv_f32_to_e5m2(1.125f), 0x3c);    /* tie between 1.0 and 1.25 -> even */
}

Test(dtype, exhaustive_round_trips)
{
    for (uint32_t u = 0; u < 65536; u++) {
        float x = rkv_bf16_to_f32((uint16_t)u);
        if (!isnan(x))
            cr_assert_eq(rkv_f32_to_bf16(x), u, "bf16 0x%04x", u);
        float y = rkv_fp16_to_f32((uint16_t)u);
        if (!isnan(y))
            cr_assert_eq(rkv_f32_to_fp16(y), u, "fp16 0x%04x", u);
    }
    for (uint32_t u = 0; u < 256; u++) {
        float x = rkv_e4m3_to_f32((uint8_t)u);
        if (!isnan(x))
            cr_assert_eq(rkv_f32_to_e4m3(x), u, "e4m3 0x%02x", u);
        float y = rkv_e5m2_to_f32((uint8_t)u);
        if (!isnan(y))
            cr_assert_eq(rkv_f32_to_e5m2(y), u, "e5m2 0x%02x", u);
    }
}

/* Rounding is to the nearest representable value: compare with a brute-force
 * search over all fp16 values for odd inputs. */
Test(dtype, fp16_nearest_by_search)
{
    const float xs[] = {0.1f, -3.14159f, 1234.567f, 6.1e-5f, 3.3e-7f, -0.000123f, 40000.3f};
    for (size_t k = 0; k < sizeof xs / sizeof xs[0]; k++) {
        float got = rkv_fp16_to_f32(rkv_f32_to_fp16(xs[k]));
        double best = INFINITY;
        for (uint32_t u = 0; u < 65536; u++) {
            float y = rkv_fp16_to_f32((uint16_t)u);
            if (isfinite(y) && fabs((double)y - xs[k]) < best)
                best = fabs((double)y - xs[k]);
        }
        cr_assert_eq(fabs((double)got - xs[k]), best, "x=%g got %g", (double)xs[k], (double)got);
    }
}

Test(dtype, names_and_sizes)
{
    rkv_dtype t;
    cr_assert_eq(rkv_dtype_parse("fp8-e5m2", &t), 0);
    cr_assert_eq(t, RKV_DTYPE_FP8_E5M2);
    cr_assert_eq(rkv_dtype_bytes(t), 1);
    cr_assert_eq(rkv_dtype_parse("bf17", &t), -1);
    cr_assert_str_eq(rkv_dtype_name(RKV_DTYPE_BF16), "bf16");
    cr_assert_eq(rkv_dtype_bytes(RKV_DTYPE_FP32), 4);
}
