/* jsonstr.c — see jsonstr.h. */
#include "jsonstr.h"

#include <stdlib.h>
#include <string.h>

json_t *cli_json_str(const char *s)
{
	if (!s)
		return NULL;
	json_t *j = json_string(s);
	if (j)
		return j;
	static const char digits[] = "0123456789abcdef";
	size_t n = strlen(s);
	char *hex = malloc(2 * n + 1);
	if (!hex)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = digits[(unsigned char)s[i] >> 4];
		hex[2 * i + 1] = digits[(unsigned char)s[i] & 15];
	}
	hex[2 * n] = '\0';
	j = json_pack("{s:s}", "hex", hex);
	free(hex);
	return j;
}
