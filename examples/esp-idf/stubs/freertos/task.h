/* STUB for a syntax and type check only (capi/tests/esp_idf_example.rs), NOT ESP-IDF:
 * the declarations examples/esp-idf/main/main.c uses, with ESP-IDF v5.x signatures. */
#pragma once
#include "freertos/FreeRTOS.h"
void vTaskDelay(const TickType_t xTicksToDelay);
