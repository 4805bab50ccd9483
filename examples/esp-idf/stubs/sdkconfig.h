/* STUB for a syntax and type check only (capi/tests/esp_idf_example.rs), NOT ESP-IDF:
 * the declarations examples/esp-idf/main/main.c uses, with ESP-IDF v5.x signatures. */
#pragma once
#define CONFIG_IDF_FIRMWARE_CHIP_ID 0x0005
#define CONFIG_OTA_SIGN_MANIFEST_URL "http://192.168.1.10:8080/fleet/thermostat.stable.manifest"
#define CONFIG_OTA_SIGN_DEVICE_TYPE "thermostat"
#define CONFIG_OTA_SIGN_CHANNEL "stable"
#define CONFIG_OTA_SIGN_POLL_SECONDS 3600
