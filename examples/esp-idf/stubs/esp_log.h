/* STUB for a syntax and type check only (capi/tests/esp_idf_example.rs), NOT ESP-IDF:
 * the declarations examples/esp-idf/main/main.c uses, with ESP-IDF v5.x signatures. */
#pragma once
void esp_log_stub(const char *tag, const char *format, ...) __attribute__((format(printf, 2, 3)));
#define ESP_LOGE(tag, format, ...) esp_log_stub(tag, format, ##__VA_ARGS__)
#define ESP_LOGW(tag, format, ...) esp_log_stub(tag, format, ##__VA_ARGS__)
#define ESP_LOGI(tag, format, ...) esp_log_stub(tag, format, ##__VA_ARGS__)
