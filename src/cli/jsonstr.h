/* jsonstr.h — a JSON value for a string the CLI did not choose (a path, an argument), never left
 * out for its bytes. */
#ifndef NONO_CLI_JSONSTR_H
#define NONO_CLI_JSONSTR_H

#include <jansson.h>

/* The JSON string `s` when it is valid UTF-8; otherwise {"hex": "<its bytes in hex>"}, because
 * jansson refuses invalid UTF-8 (json_string returns NULL, and json_array_append_new or json_pack
 * then drop the value or the whole object) and Linux paths and arguments are bytes. A new
 * reference; NULL only when `s` is NULL or memory runs out. */
json_t *cli_json_str(const char *s);

#endif
