/* STUB for a syntax and type check only (capi/tests/esp_idf_example.rs), NOT ESP-IDF:
 * the declarations examples/esp-idf/main/main.c uses, with ESP-IDF v5.x signatures. */
#pragma once
#include <stdint.h>
typedef int esp_err_t;
#define ESP_OK 0
#define ESP_FAIL -1
#define ESP_ERR_NO_MEM 0x101
#define ESP_ERR_INVALID_SIZE 0x104
const char *esp_err_to_name(esp_err_t code);
#define ESP_ERROR_CHECK(x) do { esp_err_t err_rc_ = (x); (void)err_rc_; } while (0)
