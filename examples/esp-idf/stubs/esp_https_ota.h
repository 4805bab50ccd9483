/* STUB for a syntax and type check only (capi/tests/esp_idf_example.rs), NOT ESP-IDF:
 * the declarations examples/esp-idf/main/main.c uses, with ESP-IDF v5.x signatures. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "esp_err.h"
#include "esp_http_client.h"
#define ESP_ERR_HTTPS_OTA_IN_PROGRESS (0x9000 + 1)
typedef void *esp_https_ota_handle_t;
typedef struct {
    const char *data_in;
    size_t data_in_len;
    char *data_out;
    size_t data_out_len;
} decrypt_cb_arg_t;
typedef esp_err_t (*decrypt_cb_t)(decrypt_cb_arg_t *args, void *user_ctx);
typedef struct {
    const esp_http_client_config_t *http_config;
    bool bulk_flash_erase;
    bool partial_http_download;
    int max_http_request_size;
    decrypt_cb_t decrypt_cb;
    void *decrypt_user_ctx;
    uint16_t enc_img_header_size;
} esp_https_ota_config_t;
esp_err_t esp_https_ota_begin(const esp_https_ota_config_t *ota_config, esp_https_ota_handle_t *handle);
esp_err_t esp_https_ota_perform(esp_https_ota_handle_t https_ota_handle);
bool esp_https_ota_is_complete_data_received(esp_https_ota_handle_t https_ota_handle);
esp_err_t esp_https_ota_finish(esp_https_ota_handle_t https_ota_handle);
esp_err_t esp_https_ota_abort(esp_https_ota_handle_t https_ota_handle);
