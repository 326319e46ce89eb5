/*
 * What json.c (the API's objects) takes from json_time.c (ISO 8601).
 */
#ifndef SPEECHFS_JSON_I_H
#define SPEECHFS_JSON_I_H

#include <stdint.h>

/* "2026-02-25T14:30:00.123Z" into out[32], for any ms (0 is 1970). */
void sfsi_json_format_ms(int64_t ms, char out[32]);

#endif
