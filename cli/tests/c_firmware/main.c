/*
 * A minimal C "firmware" for an ESP32-C3, shaped like an ESP-IDF app for
 * `ota-sign package --elf`: an esp_app_desc_t in .rodata_desc and an entry point. The
 * trusted keys come from a separate file that `ota-sign pubkey --format c` wrote,
 * linked from an archive as ESP-IDF links components.
 *
 * With -DOTA_WITH_VERIFIER it also calls the C API of ota-format (capi/), linked from
 * libota_format_c.a: scripts/capi-riscv.sh measures the verifier's code size this way.
 *
 * Built by cli/tests/c_firmware_cli.rs and scripts/capi-riscv.sh; never run.
 */
#include <stdint.h>

/* ESP-IDF's esp_app_desc_t, as examples/esp-idf/stubs declares it (ESP-IDF v5.x). */
#include "esp_app_desc.h"

_Static_assert(sizeof(esp_app_desc_t) == 256, "esp_app_desc_t is 256 bytes");

#ifndef APP_VERSION
#define APP_VERSION "1.4.0"
#endif

/* As ESP-IDF defines it (esp_app_desc.c): kept by `used` and by `-u esp_app_desc`. */
__attribute__((section(".rodata_desc"), used))
const esp_app_desc_t esp_app_desc = {
    .magic_word = 0xABCD5432,
    .secure_version = 0,
    .version = APP_VERSION,
    .project_name = "thermostat",
    .time = "00:00:00",
    .date = "Jan  1 2026",
    .idf_ver = "v5.3-c-test",
    .mmu_page_size = 16,
};

#ifdef OTA_WITH_VERIFIER
#include "ota_format.h"

extern const uint8_t ota_trusted_keys[OTA_DESCRIPTOR_LEN];

/* What the C library needs from the firmware: on ESP-IDF, newlib provides these. */
void abort(void) {
    for (;;) {
    }
}

/* Inputs the linker cannot see through, so that nothing is optimised away. */
volatile const uint8_t *volatile input;
volatile size_t input_len;
volatile int result;

static ota_trusted_keys_t keys;
static ota_manifest_t manifest;
static ota_image_verifier_t verifier;

static void verify_everything(void) {
    result = ota_trusted_keys_parse(&keys, ota_trusted_keys, sizeof ota_trusted_keys);
    result = ota_manifest_verify(&keys, (const uint8_t *)input, input_len, &manifest);
    ota_device_t device = {.device_type = "thermostat", .channel = "stable",
                           .running_version = "1.4.0", .chip = 5, .slot_size = 0x100000};
    ota_decision_t decision;
    result = ota_manifest_decide(&manifest, &device, &decision);
    ota_image_expectations_t expect = {.manifest = &manifest};
    result = ota_image_verifier_init(&verifier, &keys, &expect);
    size_t off, len;
    result = ota_image_verifier_update(&verifier, (const uint8_t *)input, input_len, &off, &len);
    ota_image_info_t info;
    result = ota_image_verifier_header(&verifier, &info);
    result = ota_image_verifier_finish(&verifier, &info);
}
#endif

__attribute__((section(".text.entry"), noreturn)) void _start(void) {
#ifdef OTA_WITH_VERIFIER
    verify_everything();
#endif
    for (;;) {
    }
}
