/*
 * Runs ota-format's test vectors through the C API (include/ota_format.h), built by
 * capi/tests/c_vectors.rs with gcc -fsanitize=address,undefined.
 *
 * Usage: vectors TRUSTED_DESCRIPTOR PLAN
 *
 * PLAN has one vector per line, tab-separated (the Rust test writes it from
 * vectors.json):
 *   image      FILE MANIFEST|- DEVICE_TYPE|- CHIP|-
 *   manifest   FILE -
 *   manifest   FILE DEVICE_TYPE CHANNEL CHIP RUNNING_VERSION COUNTER LAST_SEQ|- NOW|- ID_HEX SLOT
 *   descriptor FILE
 *   firmware   FILE
 * and prints one line per vector: the outcome as vectors.json spells it (an error name,
 * "valid", a decision, "None"), followed for a valid descriptor by its keys in hex.
 * Every image is streamed in several chunk sizes; differing outcomes, or payload spans
 * that do not tile the payload, print "INCONSISTENT ..." instead.
 *
 * It also runs API misuse checks first (NULL arguments, zeroed and finished objects)
 * and exits with status 1 on the first that fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ota_format.h"

#define MAX_FIELDS 12
#define MAX_LINE 1024

_Static_assert(sizeof(ota_image_verifier_t) == OTA_IMAGE_VERIFIER_WORDS * 8, "state size");

static int failures;

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "API check failed: %s\n", what);
        failures++;
    }
}

/* Reads a whole file into an exactly-sized heap buffer (so ASan sees its bounds). */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    /* malloc(0) may return NULL; keep one byte so a valid pointer exists. */
    uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf || (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size)) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)size;
    return buf;
}

static const char *name(ota_status s) { return ota_status_name((uint32_t)s); }

static void hex(const uint8_t *b, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

static int unhex(const char *s, uint8_t *out, size_t max) {
    size_t n = strlen(s) / 2;
    if (n > max) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        out[i] = (uint8_t)v;
    }
    return (int)n;
}

/* One streaming pass with chunks of `chunk` bytes; the outcome goes to `out`. */
static void stream_image(const ota_trusted_keys_t *keys, const ota_image_expectations_t *expect,
                         const uint8_t *file, size_t len, size_t chunk, char *out) {
    ota_image_verifier_t *state = malloc(sizeof *state);
    ota_status s = ota_image_verifier_init(state, keys, expect);
    size_t pos = 0, payload_next = 0;
    int tiled = 1;
    /* Feeds an empty chunk first: it must change nothing. */
    size_t off = 99, plen = 99;
    if (s == OTA_STATUS_OK) s = ota_image_verifier_update(state, NULL, 0, &off, &plen);
    if (s == OTA_STATUS_OK && (off != 0 || plen != 0)) tiled = 0;
    while (s == OTA_STATUS_OK && pos < len) {
        size_t n = len - pos < chunk ? len - pos : chunk;
        /* Each chunk in its own exact-size buffer. */
        uint8_t *piece = malloc(n);
        memcpy(piece, file + pos, n);
        s = ota_image_verifier_update(state, piece, n, &off, &plen);
        if (s == OTA_STATUS_OK) {
            ota_image_info_t info;
            if (plen > 0) {
                /* Payload only once the header verified, contiguous, at the chunk's tail. */
                if (ota_image_verifier_header(state, &info) != OTA_STATUS_OK) tiled = 0;
                else if (pos + off != info.header_len + payload_next) tiled = 0;
                if (off + plen != n) tiled = 0;
                payload_next += plen;
            }
        }
        free(piece);
        pos += n;
    }
    if (s == OTA_STATUS_OK) {
        ota_image_info_t info;
        s = ota_image_verifier_finish(state, &info);
        if (s == OTA_STATUS_OK && payload_next != info.payload_size) tiled = 0;
        size_t o, l;
        check(ota_image_verifier_update(state, file, len, &o, &l) == OTA_STATUS_BAD_STATE,
              "update after finish is BAD_STATE");
    } else {
        /* Errors are final: the same error again. */
        size_t o, l;
        ota_status again = ota_image_verifier_update(state, file, 1, &o, &l);
        if (again != s) tiled = 0;
        ota_image_verifier_finish(state, NULL);
    }
    free(state);
    if (!tiled) {
        sprintf(out, "INCONSISTENT payload spans with chunk %zu", chunk);
    } else {
        strcpy(out, s == OTA_STATUS_OK ? "valid" : name(s));
    }
}

static void run_image(const ota_trusted_keys_t *keys, char **f, int nf, char *out) {
    size_t len, mlen;
    uint8_t *file = read_file(f[1], &len);
    ota_manifest_t *manifest = malloc(sizeof *manifest);
    ota_image_expectations_t expect;
    memset(&expect, 0, sizeof expect);
    if (nf > 2 && strcmp(f[2], "-") != 0) {
        uint8_t *m = read_file(f[2], &mlen);
        ota_status s = ota_manifest_verify(keys, m, mlen, manifest);
        free(m);
        if (s != OTA_STATUS_OK) {
            sprintf(out, "BOUND MANIFEST %s", name(s));
            goto done;
        }
        expect.manifest = manifest;
    }
    if (nf > 3 && strcmp(f[3], "-") != 0) snprintf(expect.device_type, sizeof expect.device_type, "%s", f[3]);
    if (nf > 4 && strcmp(f[4], "-") != 0) {
        expect.has_chip = 1;
        expect.chip = (uint16_t)atoi(f[4]);
    }
    static const size_t chunks[] = {1, 7, 256, 4096, (size_t)-1};
    char first[128], other[128];
    stream_image(keys, &expect, file, len, chunks[0], first);
    for (size_t i = 1; i < sizeof chunks / sizeof chunks[0]; i++) {
        stream_image(keys, &expect, file, len, chunks[i], other);
        if (strcmp(first, other) != 0) {
            sprintf(out, "INCONSISTENT %s (1-byte chunks) vs %s (%zu-byte)", first, other, chunks[i]);
            goto done;
        }
    }
    strcpy(out, first);
done:
    free(manifest);
    free(file);
}

static void run_manifest(const ota_trusted_keys_t *keys, char **f, int nf, char *out) {
    size_t len;
    uint8_t *file = read_file(f[1], &len);
    ota_manifest_t *manifest = malloc(sizeof *manifest);
    ota_status s = ota_manifest_verify(keys, file, len, manifest);
    if (s != OTA_STATUS_OK) {
        strcpy(out, name(s));
    } else if (nf < 11) {
        ota_manifest_info_t info;
        s = ota_manifest_info(manifest, &info);
        strcpy(out, s == OTA_STATUS_OK ? "valid" : name(s));
    } else {
        ota_device_t device;
        memset(&device, 0, sizeof device);
        snprintf(device.device_type, sizeof device.device_type, "%s", f[2]);
        snprintf(device.channel, sizeof device.channel, "%s", f[3]);
        device.chip = (uint16_t)atoi(f[4]);
        snprintf(device.running_version, sizeof device.running_version, "%s", f[5]);
        device.security_counter = strtoull(f[6], NULL, 10);
        if (strcmp(f[7], "-") != 0) {
            device.has_last_sequence = 1;
            device.last_sequence = strtoull(f[7], NULL, 10);
        }
        if (strcmp(f[8], "-") != 0) {
            device.has_now = 1;
            device.now = strtoull(f[8], NULL, 10);
        }
        uint8_t id_buf[64];
        int id_len = unhex(f[9], id_buf, sizeof id_buf);
        uint8_t *id = malloc(id_len > 0 ? (size_t)id_len : 1);
        memcpy(id, id_buf, id_len > 0 ? (size_t)id_len : 0);
        device.device_id = id;
        device.device_id_len = id_len > 0 ? (size_t)id_len : 0;
        device.slot_size = (uint32_t)strtoul(f[10], NULL, 10);
        ota_decision_t d;
        s = ota_manifest_decide(manifest, &device, &d);
        if (s != OTA_STATUS_OK) strcpy(out, name(s));
        else if (d.kind == OTA_DECISION_KIND_INSTALL) strcpy(out, "Install");
        else if (d.kind == OTA_DECISION_KIND_UP_TO_DATE) strcpy(out, "UpToDate");
        else sprintf(out, "NotInRollout { bucket: %u, rollout: %u }", d.bucket, d.rollout);
        free(id);
    }
    free(manifest);
    free(file);
}

static void run_descriptor(char **f, int firmware, char *out) {
    size_t len;
    uint8_t *file = read_file(f[1], &len);
    ota_trusted_keys_t *keys = malloc(sizeof *keys);
    uint8_t found = 1;
    ota_status s = firmware ? ota_trusted_keys_find(keys, &found, file, len)
                            : ota_trusted_keys_parse(keys, file, len);
    if (s != OTA_STATUS_OK) {
        strcpy(out, name(s));
    } else if (!found) {
        strcpy(out, "None");
    } else {
        size_t n = ota_trusted_keys_count(keys);
        strcpy(out, "valid");
        for (size_t i = 0; i < n; i++) {
            uint8_t key[32];
            char text[65];
            if (ota_trusted_keys_get(keys, i, key) != OTA_STATUS_OK) {
                strcpy(out, "KEY READ FAILED");
                break;
            }
            hex(key, 32, text);
            strcat(out, i == 0 ? " " : ",");
            strcat(out, text);
        }
        uint8_t key[32];
        check(ota_trusted_keys_get(keys, n, key) == OTA_STATUS_INVALID_ARGUMENT,
              "key index past the count is INVALID_ARGUMENT");
    }
    free(keys);
    free(file);
}

/* Misuse the API the ways C code can: every call must refuse, none may crash. */
static void api_checks(const ota_trusted_keys_t *keys) {
    ota_trusted_keys_t zero_keys;
    memset(&zero_keys, 0, sizeof zero_keys);
    ota_manifest_t zero_manifest;
    memset(&zero_manifest, 0, sizeof zero_manifest);
    ota_image_verifier_t state;
    memset(&state, 0, sizeof state);
    size_t o, l;
    uint8_t byte = 0;
    ota_decision_t d;
    ota_manifest_info_t mi;
    ota_image_info_t ii;
    ota_device_t device;
    memset(&device, 0, sizeof device);

    check(ota_trusted_keys_parse(NULL, &byte, 1) == OTA_STATUS_NULL_ARGUMENT, "parse NULL out");
    check(ota_trusted_keys_parse(&zero_keys, NULL, 276) == OTA_STATUS_NULL_ARGUMENT, "parse NULL in");
    check(ota_trusted_keys_parse(&zero_keys, NULL, 0) == OTA_STATUS_TRUNCATED, "parse empty");
    check(ota_trusted_keys_count(&zero_keys) == 0, "zeroed keys count 0");
    check(ota_trusted_keys_count(NULL) == 0, "NULL keys count 0");
    check(ota_trusted_keys_find(&zero_keys, NULL, &byte, 1) == OTA_STATUS_NULL_ARGUMENT, "find NULL found");
    check(ota_manifest_verify(&zero_keys, &byte, 1, &zero_manifest) == OTA_STATUS_BAD_STATE,
          "verify with zeroed keys");
    check(ota_manifest_verify(NULL, &byte, 1, &zero_manifest) == OTA_STATUS_NULL_ARGUMENT, "verify NULL keys");
    check(ota_manifest_verify(keys, NULL, 5, &zero_manifest) == OTA_STATUS_NULL_ARGUMENT, "verify NULL bytes");
    check(ota_manifest_verify(keys, &byte, 1, NULL) == OTA_STATUS_NULL_ARGUMENT, "verify NULL out");
    check(ota_manifest_info(&zero_manifest, &mi) == OTA_STATUS_BAD_STATE, "info of zeroed manifest");
    check(ota_manifest_decide(&zero_manifest, &device, &d) == OTA_STATUS_BAD_STATE, "decide zeroed");
    check(ota_manifest_decide(NULL, &device, &d) == OTA_STATUS_NULL_ARGUMENT, "decide NULL");
    check(ota_image_verifier_update(&state, &byte, 1, &o, &l) == OTA_STATUS_BAD_STATE, "update zeroed state");
    check(ota_image_verifier_finish(&state, NULL) == OTA_STATUS_BAD_STATE, "finish zeroed state");
    check(ota_image_verifier_init(NULL, keys, NULL) == OTA_STATUS_NULL_ARGUMENT, "init NULL state");
    check(ota_image_verifier_init(&state, &zero_keys, NULL) == OTA_STATUS_BAD_STATE, "init zeroed keys");
    ota_image_expectations_t expect;
    memset(&expect, 0, sizeof expect);
    expect.manifest = &zero_manifest;
    check(ota_image_verifier_init(&state, keys, &expect) == OTA_STATUS_BAD_STATE, "init zeroed manifest");
    expect.manifest = NULL;
    memset(expect.device_type, 'a', sizeof expect.device_type); /* no NUL */
    check(ota_image_verifier_init(&state, keys, &expect) == OTA_STATUS_INVALID_ARGUMENT, "unterminated text");
    snprintf(expect.device_type, sizeof expect.device_type, "Upper");
    check(ota_image_verifier_init(&state, keys, &expect) == OTA_STATUS_INVALID_ARGUMENT, "invalid device type");
    check(ota_image_verifier_init(&state, keys, NULL) == OTA_STATUS_OK, "init");
    check(ota_image_verifier_header(&state, &ii) == OTA_STATUS_TRUNCATED, "header before any byte");
    check(ota_image_verifier_update(&state, NULL, 1, &o, &l) == OTA_STATUS_NULL_ARGUMENT, "update NULL chunk");
    check(ota_image_verifier_update(&state, &byte, 1, NULL, &l) == OTA_STATUS_NULL_ARGUMENT, "update NULL out");
    check(ota_image_verifier_finish(&state, NULL) == OTA_STATUS_TRUNCATED, "finish without bytes");
    check(ota_image_verifier_finish(&state, NULL) == OTA_STATUS_BAD_STATE, "finish twice");
    check(strcmp(ota_status_name(12), "InvalidField(Sizes)") == 0, "status name");
    check(strcmp(ota_status_name(0xFFFFFFFFu), "UnknownError") == 0, "status name of a non-status");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s TRUSTED_DESCRIPTOR PLAN\n", argv[0]);
        return 2;
    }
    size_t dlen;
    uint8_t *descriptor = read_file(argv[1], &dlen);
    static ota_trusted_keys_t keys;
    ota_status s = ota_trusted_keys_parse(&keys, descriptor, dlen);
    free(descriptor);
    if (s != OTA_STATUS_OK) {
        fprintf(stderr, "trusted descriptor: %s\n", name(s));
        return 2;
    }
    api_checks(&keys);
    if (failures) return 1;

    FILE *plan = fopen(argv[2], "r");
    if (!plan) {
        fprintf(stderr, "cannot open %s\n", argv[2]);
        return 2;
    }
    char line[MAX_LINE];
    while (fgets(line, sizeof line, plan)) {
        line[strcspn(line, "\n")] = 0;
        char *f[MAX_FIELDS];
        int nf = 0;
        for (char *t = strtok(line, "\t"); t && nf < MAX_FIELDS; t = strtok(NULL, "\t")) f[nf++] = t;
        if (nf < 2) continue;
        char out[512];
        if (strcmp(f[0], "image") == 0) run_image(&keys, f, nf, out);
        else if (strcmp(f[0], "manifest") == 0) run_manifest(&keys, f, nf, out);
        else if (strcmp(f[0], "descriptor") == 0) run_descriptor(f, 0, out);
        else if (strcmp(f[0], "firmware") == 0) run_descriptor(f, 1, out);
        else sprintf(out, "UNKNOWN KIND %s", f[0]);
        printf("%s\n", out);
    }
    fclose(plan);
    return failures ? 1 : 0;
}
