/*
 * An ESP-IDF app in C that updates itself from releases published with ota-sign:
 *
 *   1. every CONFIG_OTA_SIGN_POLL_SECONDS, download <device-type>.<channel>.manifest
 *      (at most 1024 bytes) and verify it against the keys this firmware trusts
 *      (main/trusted_keys.c, written by `ota-sign pubkey --format c`);
 *   2. decide with the device's rules (ota_manifest_decide: device type, chip, channel,
 *      expiry, replayed manifest, anti-rollback counter, downgrade, minimum version,
 *      slot size, staged rollout);
 *   3. download the image with esp_https_ota's partial-download API; every chunk passes
 *      through the C verifier (the decrypt callback) before esp_ota_write, and only the
 *      payload (the app image) is written;
 *   4. switch slots (esp_https_ota_finish) only when the verifier accepted the whole
 *      image, then remember the manifest's sequence and security counter.
 *
 * Only uncompressed images: package releases for it with `ota-sign package --no-compress`.
 *
 * NEVER BUILT in this repository (no ESP-IDF here): see README.md for what was checked.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "esp_app_desc.h"
#include "esp_err.h"
#include "esp_http_client.h"
#include "esp_https_ota.h"
#include "esp_log.h"
#include "esp_mac.h"
#include "esp_ota_ops.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "nvs.h"
#include "nvs_flash.h"
#include "protocol_examples_common.h"
#include "sdkconfig.h"

#include "ota_format.h"

static const char *TAG = "ota-sign";

/* main/trusted_keys.c: the descriptor `ota-sign package` finds in this firmware. */
extern const uint8_t ota_trusted_keys[OTA_DESCRIPTOR_LEN];

/* What ota-sign v1 writes; esp_https_ota needs the header length up front to turn
 * payload offsets into file offsets (its enc_img_header_size). */
#define OTA_HEADER_LEN 256
/* docs/FORMAT.md: a manifest is at most 1024 bytes. */
#define MAX_MANIFEST_LEN 1024
/* The file name part of a URL: the image sits next to the manifest. */
#define MAX_URL_LEN 512
/* Bound of esp_https_ota_perform calls: each consumes at least one byte of a file of
 * at most 16 MiB + 64 KiB + 1 KiB, or returns an error; stated so the loop is finite. */
#define MAX_PERFORM_CALLS (17u * 1024u * 1024u)

static ota_trusted_keys_t s_keys; /* parsed once; the verifiers point to it */

/* The device's anti-rollback state, in NVS. */
typedef struct {
    uint8_t has_sequence;
    uint64_t sequence;
    uint64_t security_counter;
} rollback_state_t;

static void load_state(rollback_state_t *st) {
    memset(st, 0, sizeof *st);
    nvs_handle_t nvs;
    if (nvs_open("ota_sign", NVS_READONLY, &nvs) != ESP_OK) return;
    st->has_sequence = nvs_get_u64(nvs, "sequence", &st->sequence) == ESP_OK;
    if (nvs_get_u64(nvs, "counter", &st->security_counter) != ESP_OK) st->security_counter = 0;
    nvs_close(nvs);
}

/* Never lowers either value. */
static esp_err_t store_state(const ota_manifest_info_t *m, const rollback_state_t *old) {
    nvs_handle_t nvs;
    esp_err_t err = nvs_open("ota_sign", NVS_READWRITE, &nvs);
    if (err != ESP_OK) return err;
    uint64_t seq = old->has_sequence && old->sequence > m->sequence ? old->sequence : m->sequence;
    uint64_t counter = old->security_counter > m->security_counter ? old->security_counter
                                                                     : m->security_counter;
    err = nvs_set_u64(nvs, "sequence", seq);
    if (err == ESP_OK) err = nvs_set_u64(nvs, "counter", counter);
    if (err == ESP_OK) err = nvs_commit(nvs);
    nvs_close(nvs);
    return err;
}

/* Downloads the manifest into buf (at most MAX_MANIFEST_LEN bytes); refuses more. */
static esp_err_t fetch_manifest(uint8_t *buf, size_t *len) {
    esp_http_client_config_t cfg = {.url = CONFIG_OTA_SIGN_MANIFEST_URL, .timeout_ms = 10000};
    esp_http_client_handle_t client = esp_http_client_init(&cfg);
    if (client == NULL) return ESP_FAIL;
    esp_err_t err = esp_http_client_open(client, 0);
    if (err == ESP_OK) {
        esp_http_client_fetch_headers(client);
        if (esp_http_client_get_status_code(client) != 200) err = ESP_FAIL;
    }
    size_t total = 0;
    /* Bounded: every pass reads at least one byte into a 1025-byte budget, or stops. */
    while (err == ESP_OK && total <= MAX_MANIFEST_LEN) {
        int n = esp_http_client_read(client, (char *)buf + total, (int)(MAX_MANIFEST_LEN + 1 - total));
        if (n < 0) err = ESP_FAIL;
        if (n <= 0) break;
        total += (size_t)n;
    }
    if (total > MAX_MANIFEST_LEN) err = ESP_ERR_INVALID_SIZE; /* not a manifest */
    esp_http_client_close(client);
    esp_http_client_cleanup(client);
    *len = total;
    return err;
}

/* Every downloaded chunk goes through here before esp_ota_write: the verifier checks
 * the header (signature, binding to the manifest) before it hands out any payload, and
 * only payload bytes (the app image) are passed on. esp_https_ota frees data_out. */
typedef struct {
    ota_image_verifier_t verifier;
    ota_status status; /* first failure, reported after the download */
} download_t;

static esp_err_t verify_chunk(decrypt_cb_arg_t *args, void *user_ctx) {
    download_t *dl = user_ctx;
    size_t off = 0, len = 0;
    dl->status = ota_image_verifier_update(&dl->verifier, (const uint8_t *)args->data_in,
                                           args->data_in_len, &off, &len);
    if (dl->status != OTA_STATUS_OK) return ESP_FAIL;
    if (len > 0) {
        /* esp_https_ota asked for ranges assuming OTA_HEADER_LEN: refuse any other. */
        ota_image_info_t info;
        if (ota_image_verifier_header(&dl->verifier, &info) != OTA_STATUS_OK ||
            info.header_len != OTA_HEADER_LEN || info.compression != 0) {
            dl->status = OTA_STATUS_INVALID_ARGUMENT;
            return ESP_FAIL;
        }
    }
    args->data_out = NULL;
    args->data_out_len = len;
    if (len == 0) return ESP_OK; /* header bytes only: nothing to write yet */
    args->data_out = malloc(len);
    if (args->data_out == NULL) return ESP_ERR_NO_MEM;
    memcpy(args->data_out, args->data_in + off, len);
    return ESP_OK;
}

/* Downloads, verifies and installs the image the manifest names; switches slots only
 * when the verifier accepted every byte. */
static esp_err_t install(const ota_manifest_t *manifest, const ota_manifest_info_t *info) {
    char url[MAX_URL_LEN];
    const char *slash = strrchr(CONFIG_OTA_SIGN_MANIFEST_URL, '/');
    size_t dir_len = slash ? (size_t)(slash - CONFIG_OTA_SIGN_MANIFEST_URL) + 1 : 0;
    if (dir_len + strlen(info->image_name) + 1 > sizeof url) return ESP_ERR_INVALID_SIZE;
    memcpy(url, CONFIG_OTA_SIGN_MANIFEST_URL, dir_len);
    strcpy(url + dir_len, info->image_name); /* a plain file name: FORMAT.md */

    static download_t dl; /* 1.6 KiB: not on the HTTP task's stack */
    ota_image_expectations_t expect = {.manifest = manifest};
    ota_status st = ota_image_verifier_init(&dl.verifier, &s_keys, &expect);
    if (st != OTA_STATUS_OK) return ESP_FAIL;
    dl.status = OTA_STATUS_OK;

    esp_http_client_config_t http = {.url = url, .timeout_ms = 10000, .keep_alive_enable = true};
    esp_https_ota_config_t cfg = {
        .http_config = &http,
        .partial_http_download = true,
        .max_http_request_size = 16 * 1024,
        .decrypt_cb = verify_chunk,
        .decrypt_user_ctx = &dl,
        .enc_img_header_size = OTA_HEADER_LEN,
    };
    esp_https_ota_handle_t ota = NULL;
    esp_err_t err = esp_https_ota_begin(&cfg, &ota);
    if (err != ESP_OK) {
        ota_image_verifier_finish(&dl.verifier, NULL);
        return err;
    }
    uint32_t calls = 0;
    do {
        err = esp_https_ota_perform(ota);
    } while (err == ESP_ERR_HTTPS_OTA_IN_PROGRESS && ++calls < MAX_PERFORM_CALLS);

    /* The verifier's verdict on the whole file: length and payload digest. */
    ota_status verdict = ota_image_verifier_finish(&dl.verifier, NULL);
    if (dl.status != OTA_STATUS_OK) verdict = dl.status;
    if (err != ESP_OK || !esp_https_ota_is_complete_data_received(ota) || verdict != OTA_STATUS_OK) {
        ESP_LOGE(TAG, "image refused: %s (download: %s)", ota_status_name((uint32_t)verdict),
                 esp_err_to_name(err));
        esp_https_ota_abort(ota); /* the inactive slot is never booted */
        return ESP_FAIL;
    }
    /* esp_ota_end re-checks the app image, then the boot slot switches. */
    return esp_https_ota_finish(ota);
}

static void check_for_update(void) {
    static uint8_t buf[MAX_MANIFEST_LEN + 1];
    size_t len = 0;
    if (fetch_manifest(buf, &len) != ESP_OK) {
        ESP_LOGW(TAG, "no manifest");
        return;
    }
    ota_manifest_t manifest;
    ota_status st = ota_manifest_verify(&s_keys, buf, len, &manifest);
    if (st != OTA_STATUS_OK) {
        ESP_LOGE(TAG, "manifest refused: %s", ota_status_name((uint32_t)st));
        return;
    }
    ota_manifest_info_t info;
    ota_manifest_info(&manifest, &info);

    rollback_state_t state;
    load_state(&state);
    uint8_t mac[6];
    esp_efuse_mac_get_default(mac);
    const esp_partition_t *slot = esp_ota_get_next_update_partition(NULL);
    time_t now = time(NULL);
    ota_device_t device = {
        .device_type = CONFIG_OTA_SIGN_DEVICE_TYPE,
        .channel = CONFIG_OTA_SIGN_CHANNEL,
        .chip = CONFIG_IDF_FIRMWARE_CHIP_ID,
        .has_last_sequence = state.has_sequence,
        .last_sequence = state.sequence,
        .security_counter = state.security_counter,
        /* Only a clock set by SNTP is trustworthy; before 2024 it was not set. */
        .has_now = now > 1704067200,
        .now = (uint64_t)now,
        .device_id = mac,
        .device_id_len = sizeof mac,
        .slot_size = slot ? slot->size : 0,
    };
    snprintf(device.running_version, sizeof device.running_version, "%s",
             esp_app_get_description()->version);

    ota_decision_t decision;
    st = ota_manifest_decide(&manifest, &device, &decision);
    if (st != OTA_STATUS_OK) {
        ESP_LOGW(TAG, "release %s refused: %s", info.version, ota_status_name((uint32_t)st));
        return;
    }
    if (decision.kind == OTA_DECISION_KIND_UP_TO_DATE) return;
    if (decision.kind == OTA_DECISION_KIND_NOT_IN_ROLLOUT) {
        ESP_LOGI(TAG, "%s: not in rollout yet (bucket %u >= %u)", info.version,
                 decision.bucket, decision.rollout);
        return;
    }
    ESP_LOGI(TAG, "installing %s (%s)", info.version, info.image_name);
    if (install(&manifest, &info) != ESP_OK) return;
    if (store_state(&info, &state) != ESP_OK) {
        /* The new slot is set: booting it is safe, only replay protection lags. */
        ESP_LOGW(TAG, "could not store the manifest sequence");
    }
    esp_restart();
}

void app_main(void) {
    esp_err_t err = nvs_flash_init();
    if (err != ESP_OK) ESP_LOGE(TAG, "nvs: %s", esp_err_to_name(err));
    /* This image runs on trial after an update until it confirms itself; an app would
     * check its own health first. */
    esp_ota_mark_app_valid_cancel_rollback();

    ota_status st = ota_trusted_keys_parse(&s_keys, ota_trusted_keys, sizeof ota_trusted_keys);
    if (st != OTA_STATUS_OK) {
        ESP_LOGE(TAG, "trusted keys: %s", ota_status_name((uint32_t)st));
        return;
    }
    ESP_LOGI(TAG, "running %s, trusting %u key(s)", esp_app_get_description()->version,
             (unsigned)ota_trusted_keys_count(&s_keys));
    ESP_ERROR_CHECK(example_connect());
    /* The device's main loop: runs until power-off, one check per poll interval. */
    for (;;) {
        check_for_update();
        vTaskDelay(pdMS_TO_TICKS(CONFIG_OTA_SIGN_POLL_SECONDS * 1000));
    }
}
