/* STUB for a syntax and type check only (capi/tests/esp_idf_example.rs), NOT ESP-IDF:
 * the declarations examples/esp-idf/main/main.c uses, with ESP-IDF v5.x signatures. */
#pragma once
#include <stdint.h>
#include "esp_err.h"
esp_err_t esp_efuse_mac_get_default(uint8_t *mac);
