/* route_cfg.c — the route table of a proxy configuration: parsing and checking a route, reading its
 * secret from the caller's source (env://, file://, a value; keyring:// through keyring.c), endpoint
 * rules, deep copies that wipe the secret when freed, and the per-session placeholders made when the
 * proxy starts. No message ever contains a secret or a placeholder: they name the source only. */
#include "route.h"
#include "keyring.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

static void free_str_wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void np_route_free(struct np_route *r)
{
	if (!r)
		return;
	if (r->secret) {
		explicit_bzero(r->secret, r->secret_len);
		free(r->secret);
	}
	explicit_bzero(r->placeholder, sizeof r->placeholder);
	free(r->upstream);
	free(r->base_path);
	free(r->source);
	free(r->inject_header);
	/* The format and the replacement hold no secret ("{}" stands for it) but are wiped like it. */
	free_str_wipe(r->format);
	free(r->path_pattern);
	free_str_wipe(r->path_replacement);
	free(r->query_param);
	free(r->env_var);
	free(r->tls_ca);
	free(r->tls_cert);
	free(r->tls_key);
	for (size_t i = 0; i < r->nrules; i++)
		free(r->rules[i].pattern);
	free(r->rules);
	np_route_tls_free(r);
	free(r);
}

/* strdup that keeps NULL. Returns false on ENOMEM. */
static bool dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	return !src || (*dst = strdup(src)) != NULL;
}

struct np_route *np_route_clone(const struct np_route *r)
{
	struct np_route *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	memcpy(n->prefix, r->prefix, sizeof n->prefix);
	memcpy(n->host, r->host, sizeof n->host);
	n->tls = r->tls;
	n->port = r->port;
	n->mode = r->mode;
	n->has_value = r->has_value;
	bool ok = dup_opt(&n->upstream, r->upstream) && dup_opt(&n->base_path, r->base_path) &&
		  dup_opt(&n->source, r->source) && dup_opt(&n->inject_header, r->inject_header) &&
		  dup_opt(&n->format, r->format) && dup_opt(&n->path_pattern, r->path_pattern) &&
		  dup_opt(&n->path_replacement, r->path_replacement) &&
		  dup_opt(&n->query_param, r->query_param) && dup_opt(&n->env_var, r->env_var) &&
		  dup_opt(&n->tls_ca, r->tls_ca) && dup_opt(&n->tls_cert, r->tls_cert) &&
		  dup_opt(&n->tls_key, r->tls_key);
	if (ok && r->secret) {
		ok = (n->secret = malloc(r->secret_len + 1)) != NULL;
		if (ok) {
			memcpy(n->secret, r->secret, r->secret_len + 1);
			n->secret_len = r->secret_len;
		}
	}
	if (ok && r->nrules) {
		ok = (n->rules = calloc(r->nrules, sizeof *n->rules)) != NULL;
		for (size_t i = 0; ok && i < r->nrules; i++, n->nrules++) {
			n->rules[i] = r->rules[i];
			ok = (n->rules[i].pattern = strdup(r->rules[i].pattern)) != NULL;
		}
	}
	if (!ok) {
		np_route_free(n);
		return NULL;
	}
	return n;
}

/* ---- checking a spec ---- */

static bool seg_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '~' || ch == '-';
}

/* "openai", "/openai/", "a/b" → "/openai", "/a/b". Segments of [A-Za-z0-9._~-], no "." or "..". */
static int parse_prefix(const char *in, char *out, nono_error *err)
{
	if (!in)
		return nono_fail(err, -EINVAL, "route: no prefix");
	const char *s = in + (*in == '/');
	size_t len = strlen(s);
	if (len && s[len - 1] == '/')
		len--;
	if (len == 0 || len + 2 > NP_ROUTE_PREFIX_MAX)
		return nono_fail(err, -EINVAL, "route prefix \"%.80s\": 1 to %d characters", in,
				 NP_ROUTE_PREFIX_MAX - 2);
	size_t seg = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '/') {
			if (seg == 0 || (seg == 1 && s[i - 1] == '.') ||
			    (seg == 2 && s[i - 1] == '.' && s[i - 2] == '.'))
				return nono_fail(err, -EINVAL, "route prefix \"%.80s\": empty, \".\" or \"..\" segment", in);
			seg = 0;
			continue;
		}
		if (!seg_char(s[i]))
			return nono_fail(err, -EINVAL,
					 "route prefix \"%.80s\": use path segments of [A-Za-z0-9._~-]", in);
		seg++;
	}
	out[0] = '/';
	memcpy(out + 1, s, len);
	out[len + 1] = '\0';
	return 0;
}

/* "https://host[:port][/base]": scheme, host, port, base path. No userinfo, query or fragment. */
static int parse_upstream(struct np_route *r, const char *u, nono_error *err)
{
	const char *rest;
	if (!u)
		return nono_fail(err, -EINVAL, "route %s: no upstream", r->prefix);
	if (strncasecmp(u, "https://", 8) == 0) {
		r->tls = true;
		rest = u + 8;
	} else if (strncasecmp(u, "http://", 7) == 0) {
		rest = u + 7;
	} else {
		return nono_fail(err, -EINVAL, "route %s: upstream \"%.100s\": scheme must be https or http",
				 r->prefix, u);
	}
	size_t alen = strcspn(rest, "/?#");
	if (memchr(rest, '@', alen))
		return nono_fail(err, -EINVAL, "route %s: upstream \"%.100s\": credentials in the URL are not allowed",
				 r->prefix, u);
	const char *path = rest + alen;
	if (strpbrk(path, "?#"))
		return nono_fail(err, -EINVAL, "route %s: upstream \"%.100s\": no query or fragment allowed",
				 r->prefix, u);
	/* The base path goes into every request line as it is: RFC 3986 path characters only. */
	for (const char *p = path; *p; p++)
		if (!seg_char(*p) && !strchr("/%!$&'()*+,;=:@", *p))
			return nono_fail(err, -EINVAL, "route %s: the upstream path may hold only URL path characters "
						       "(percent-encode the others)", r->prefix);
	if (http_split_authority(rest, alen, r->tls ? 443 : 80, r->host, sizeof r->host, &r->port) < 0 ||
	    !r->host[0] || r->port == 0)
		return nono_fail(err, -EINVAL, "route %s: upstream \"%.100s\": bad host or port", r->prefix, u);
	char norm[NP_HOST_MAX];
	if (np_host_normalize(r->host, strlen(r->host), norm, sizeof norm) < 0)
		return nono_fail(err, -EINVAL, "route %s: upstream host \"%.100s\" is not a valid host name",
				 r->prefix, r->host);
	size_t plen = strlen(path);
	while (plen && path[plen - 1] == '/')
		plen--;
	if (!(r->upstream = strdup(u)) || !(r->base_path = strndup(path, plen)))
		return nono_fail(err, -ENOMEM, "out of memory");
	return 0;
}

static bool valid_env_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* NAME from "env://NAME", the file's base name, the keyring account, or a bare key, upper-cased with
 * anything but letters and digits turned into '_'. */
static void default_env_name(const char *key, const char *prefix, char *out, size_t cap)
{
	const char *name = key;
	if (!key) {
		snprintf(out, cap, "%s_API_KEY", prefix + 1);
	} else {
		const char *sep = strstr(key, "://");
		if (sep)
			name = sep + 3;
		const char *slash = strrchr(name, '/');
		if (slash && slash[1])
			name = slash + 1;
		/* keyring://SERVICE/ACCOUNT?decode=go-keyring: the account names it, not the query */
		int n = np_keyring_is_source(key) ? (int)np_keyring_name_len(name) : (int)strlen(name);
		snprintf(out, cap, "%.*s", n, name);
	}
	for (char *p = out; *p; p++)
		*p = (*p >= 'a' && *p <= 'z') ? (char)(*p - 32)
		     : ((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) ? *p : '_';
}

static int check_format(const struct np_route *r, const char *what, const char *f, nono_error *err)
{
	const char *a = f ? strstr(f, "{}") : NULL;
	if (!a || strstr(a + 2, "{}"))
		return nono_fail(err, -EINVAL, "route %s: %s must contain \"{}\" exactly once", r->prefix, what);
	for (const char *p = f; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return nono_fail(err, -EINVAL, "route %s: %s has a control character", r->prefix, what);
	return 0;
}

static bool header_token(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!(seg_char(*s) || strchr("!#$%&'*+^`|", *s)))
			return false;
	return true;
}

/* The injection fields of one mode (the others must be unset: nothing silently ignored). */
static int parse_mode(struct np_route *r, const nono_route_spec *s, nono_error *err)
{
	r->mode = s->inject_mode;
	bool hdr = s->inject_mode == NONO_INJECT_HEADER, path = s->inject_mode == NONO_INJECT_URL_PATH,
	     query = s->inject_mode == NONO_INJECT_QUERY_PARAM;
	if (!nono_inject_mode_name(s->inject_mode))
		return nono_fail(err, -EINVAL, "route %s: unknown injection mode %d", r->prefix, (int)s->inject_mode);
	if ((!hdr && (s->inject_header || s->credential_format)) ||
	    (!path && (s->path_pattern || s->path_replacement)) || (!query && s->query_param_name))
		return nono_fail(err, -EINVAL, "route %s: fields of another injection mode than %s are set",
				 r->prefix, nono_inject_mode_name(s->inject_mode));
	if (hdr) {
		const char *name = s->inject_header ? s->inject_header : "Authorization";
		const char *fmt = s->credential_format ? s->credential_format : "Bearer {}";
		if (!header_token(name))
			return nono_fail(err, -EINVAL, "route %s: inject_header \"%.64s\" is not a header name",
					 r->prefix, name);
		if (check_format(r, "credential_format", fmt, err) < 0)
			return -EINVAL;
		if (!dup_opt(&r->inject_header, name) || !dup_opt(&r->format, fmt))
			return nono_fail(err, -ENOMEM, "out of memory");
	} else if (path) {
		const char *rep = s->path_replacement ? s->path_replacement : s->path_pattern;
		if (check_format(r, "path_pattern", s->path_pattern, err) < 0 ||
		    check_format(r, "path_replacement", rep, err) < 0)
			return -EINVAL;
		if (strpbrk(s->path_pattern, "?# ") || strpbrk(rep, "?# "))
			return nono_fail(err, -EINVAL, "route %s: path patterns hold a path only", r->prefix);
		if (!dup_opt(&r->path_pattern, s->path_pattern) || !dup_opt(&r->path_replacement, rep))
			return nono_fail(err, -ENOMEM, "out of memory");
	} else if (query) {
		const char *q = s->query_param_name;
		if (!q || !*q || strpbrk(q, "&=#?% \t\r\n"))
			return nono_fail(err, -EINVAL, "route %s: query_param_name must be a plain parameter name",
					 r->prefix);
		if (!dup_opt(&r->query_param, q))
			return nono_fail(err, -ENOMEM, "out of memory");
	}
	return 0;
}

/* ---- the secret ---- */

static int read_secret_file(struct np_route *r, const char *path, nono_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return nono_fail(err, -errno, "route %s: credential file://%.200s: %s", r->prefix, path,
				 strerror(errno));
	unsigned char *buf = malloc(NP_SECRET_MAX + 1);
	size_t len = 0;
	int rc = 0;
	if (!buf) {
		close(fd);
		return nono_fail(err, -ENOMEM, "out of memory");
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, NP_SECRET_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = nono_fail(err, -errno, "route %s: credential file://%.200s: %s", r->prefix, path,
				       strerror(errno));
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > NP_SECRET_MAX) {
			rc = nono_fail(err, -EINVAL, "route %s: credential file://%.200s is larger than %d bytes",
				       r->prefix, path, NP_SECRET_MAX);
			break;
		}
	}
	close(fd);
	/* One trailing newline (echo KEY > file) is not part of the secret. */
	while (rc == 0 && len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (rc == 0) {
		buf[len] = '\0';
		r->secret = buf;
		r->secret_len = len;
		return 0;
	}
	explicit_bzero(buf, NP_SECRET_MAX + 1);
	free(buf);
	return rc;
}

static int take_secret(struct np_route *r, const char *value, nono_error *err)
{
	size_t len = strlen(value);
	if (len > NP_SECRET_MAX)
		return nono_fail(err, -EINVAL, "route %s: the credential is larger than %d bytes", r->prefix,
				 NP_SECRET_MAX);
	if (!(r->secret = malloc(len + 1)))
		return nono_fail(err, -ENOMEM, "out of memory");
	memcpy(r->secret, value, len + 1);
	r->secret_len = len;
	return 0;
}

/* The secret from its source (r->source), or the value already given (r->secret). */
static int load_secret(struct np_route *r, nono_error *err)
{
	const char *key = r->has_value ? NULL : r->source;
	int rc = 0;
	if (r->has_value)
		; /* given through the API: taken when the route was added */
	else if (strncmp(key, "env://", 6) == 0) {
		const char *v = valid_env_name(key + 6) ? getenv(key + 6) : NULL;
		if (!valid_env_name(key + 6))
			return nono_fail(err, -EINVAL, "route %s: credential %.100s: not a variable name", r->prefix, key);
		if (!v)
			return nono_fail(err, -ENOENT, "route %s: credential %.100s: the variable is not set in nono's "
						       "environment", r->prefix, key);
		rc = take_secret(r, v, err);
	} else if (strncmp(key, "file://", 7) == 0) {
		rc = read_secret_file(r, key + 7, err);
	} else if (np_keyring_is_source(key)) {
		rc = np_keyring_read(r->prefix, key, NP_SECRET_MAX, &r->secret, &r->secret_len, err);
	} else {
		return nono_fail(err, -EINVAL, "route %s: credential %.100s: unknown source (env://VAR, "
					       "file://PATH or keyring://NAME)", r->prefix, key);
	}
	if (rc < 0)
		return rc;
	if (r->secret_len == 0)
		return nono_fail(err, -EINVAL, "route %s: the credential from %.100s is empty", r->prefix, r->source);
	for (size_t i = 0; i < r->secret_len; i++)
		if (r->secret[i] < 0x20 || r->secret[i] == 0x7f)
			return nono_fail(err, -EINVAL, "route %s: the credential from %.100s contains a control "
						       "character (refused: it would split the request)",
					 r->prefix, r->source);
	return 0;
}

static int fill_route(struct np_route *r, const nono_route_spec *s, nono_error *err)
{
	int rc;
	if ((rc = parse_prefix(s->prefix, r->prefix, err)) < 0 ||
	    (rc = parse_upstream(r, s->upstream, err)) < 0 || (rc = parse_mode(r, s, err)) < 0)
		return rc;
	bool cred = s->credential_key || s->credential_value;
	if (s->credential_key && (!*s->credential_key || strpbrk(s->credential_key, "\r\n")))
		return nono_fail(err, -EINVAL, "route %s: credential_key must not be empty", r->prefix);
	/* A keyring source's form (its ?decode= query) is checked now, so a dry run catches it. */
	if (s->credential_key && !s->credential_value && np_keyring_is_source(s->credential_key) &&
	    (rc = np_keyring_check(r->prefix, s->credential_key, err)) < 0)
		return rc;
	/* A source is read when the proxy starts (np_routes_start); a value is taken now and checked. */
	r->has_value = s->credential_value != NULL;
	if (cred && !dup_opt(&r->source, s->credential_value ? "a value given through the API" : s->credential_key))
		return nono_fail(err, -ENOMEM, "out of memory");
	if (r->has_value && ((rc = take_secret(r, s->credential_value, err)) < 0 || (rc = load_secret(r, err)) < 0))
		return rc;
	char ev[128];
	if (s->env_var)
		snprintf(ev, sizeof ev, "%s", s->env_var);
	else
		default_env_name(s->credential_key, r->prefix, ev, sizeof ev);
	if (cred && (!valid_env_name(ev) || nono_env_name_is_loader(ev) || strlen(ev) > 100))
		return nono_fail(err, -EINVAL, "route %s: env_var \"%.100s\" is not a usable variable name",
				 r->prefix, ev);
	if (!cred && s->env_var)
		return nono_fail(err, -EINVAL, "route %s: env_var without a credential", r->prefix);
	if ((cred && !dup_opt(&r->env_var, ev)) || !dup_opt(&r->tls_ca, s->tls_ca) ||
	    !dup_opt(&r->tls_cert, s->tls_client_cert) || !dup_opt(&r->tls_key, s->tls_client_key))
		return nono_fail(err, -ENOMEM, "out of memory");
	if (!cred && r->mode != NONO_INJECT_HEADER)
		return nono_fail(err, -EINVAL, "route %s: injection mode %s without a credential", r->prefix,
				 nono_inject_mode_name(r->mode));
	if (!!s->tls_client_cert != !!s->tls_client_key)
		return nono_fail(err, -EINVAL, "route %s: a client certificate needs its key and a key its certificate",
				 r->prefix);
	if (!r->tls && (s->tls_ca || s->tls_client_cert))
		return nono_fail(err, -EINVAL, "route %s: TLS options on an http:// upstream", r->prefix);
	return 0;
}

void nono_route_spec_init(nono_route_spec *spec)
{
	if (spec)
		memset(spec, 0, sizeof *spec);
}

const char *nono_inject_mode_name(nono_inject_mode mode)
{
	static const char *const names[] = {"header", "url_path", "query_param", "basic_auth"};
	return (unsigned)mode < N_ELEMENTS(names) ? names[mode] : NULL;
}

int nono_proxy_config_add_route(nono_proxy_config *cfg, const nono_route_spec *spec, nono_error *err)
{
	if (!cfg || !spec)
		return nono_fail(err, -EINVAL, "no config or route");
	if (cfg->nroutes >= NP_ROUTE_MAX)
		return nono_fail(err, -EINVAL, "too many routes (limit %d)", NP_ROUTE_MAX);
	struct np_route *r = calloc(1, sizeof *r);
	if (!r)
		return nono_fail(err, -ENOMEM, "out of memory");
	int rc = fill_route(r, spec, err);
	for (size_t i = 0; rc == 0 && i < cfg->nroutes; i++)
		if (strcmp(cfg->routes[i]->prefix, r->prefix) == 0)
			rc = nono_fail(err, -EINVAL, "duplicate route prefix %s", r->prefix);
	struct np_route **nv = rc == 0 ? realloc(cfg->routes, (cfg->nroutes + 1) * sizeof *nv) : NULL;
	if (rc == 0 && !nv)
		rc = nono_fail(err, -ENOMEM, "out of memory");
	if (rc < 0) {
		np_route_free(r);
		return rc;
	}
	nv[cfg->nroutes++] = r;
	cfg->routes = nv;
	return 0;
}

int nono_proxy_config_add_endpoint_rule(nono_proxy_config *cfg, const char *prefix, const char *method,
					const char *path_pattern, nono_error *err)
{
	char p[NP_ROUTE_PREFIX_MAX];
	int rc;
	if (!cfg || !method || !path_pattern)
		return nono_fail(err, -EINVAL, "endpoint rule: missing argument");
	if ((rc = parse_prefix(prefix, p, err)) < 0)
		return rc;
	struct np_route *r = NULL;
	for (size_t i = 0; i < cfg->nroutes && !r; i++)
		if (strcmp(cfg->routes[i]->prefix, p) == 0)
			r = cfg->routes[i];
	if (!r)
		return nono_fail(err, -ENOENT, "endpoint rule: no route %s", p);
	if (!*method || strlen(method) >= sizeof r->rules[0].method ||
	    (strcmp(method, "*") != 0 && !header_token(method)))
		return nono_fail(err, -EINVAL, "endpoint rule on %s: bad method \"%.20s\"", p, method);
	if (path_pattern[0] != '/' || strlen(path_pattern) > NP_RULE_PATTERN_MAX || strpbrk(path_pattern, " ?#\t\r\n"))
		return nono_fail(err, -EINVAL, "endpoint rule on %s: the path pattern must start with '/' and hold "
					       "a path only", p);
	size_t stars = 0;
	for (const char *q = path_pattern; *q; q++)
		stars += *q == '*';
	if (stars > 8) /* the matcher backtracks: keep its work bounded */
		return nono_fail(err, -EINVAL, "endpoint rule on %s: at most 8 '*' in a pattern", p);
	if (r->nrules >= NP_ROUTE_RULES_MAX)
		return nono_fail(err, -EINVAL, "endpoint rule on %s: too many rules (limit %d)", p, NP_ROUTE_RULES_MAX);
	struct np_endpoint *nv = realloc(r->rules, (r->nrules + 1) * sizeof *nv);
	if (!nv)
		return nono_fail(err, -ENOMEM, "out of memory");
	r->rules = nv;
	struct np_endpoint *e = &nv[r->nrules];
	snprintf(e->method, sizeof e->method, "%s", method);
	for (char *m = e->method; *m; m++)
		if (*m >= 'a' && *m <= 'z')
			*m = (char)(*m - 32);
	if (!(e->pattern = strdup(path_pattern)))
		return nono_fail(err, -ENOMEM, "out of memory");
	r->nrules++;
	return 0;
}

int nono_proxy_config_describe_route(const nono_proxy_config *cfg, size_t i, char *buf, size_t len)
{
	if (!cfg || i >= cfg->nroutes)
		return -ENOENT;
	const struct np_route *r = cfg->routes[i];
	char how[160] = "no credential";
	if (r->source && r->mode == NONO_INJECT_HEADER)
		snprintf(how, sizeof how, "header %s, credential from %.100s", r->inject_header, r->source);
	else if (r->source)
		snprintf(how, sizeof how, "%s, credential from %.100s", nono_inject_mode_name(r->mode), r->source);
	return snprintf(buf, len, "%s -> %s (%s%s%s%s%s%s)", r->prefix, r->upstream, how,
			r->env_var ? ", placeholder in $" : "", r->env_var ? r->env_var : "",
			r->tls_ca ? ", CA " : "", r->tls_ca ? r->tls_ca : "",
			r->nrules ? ", endpoint rules" : "");
}

/* ---- the running proxy ---- */

int np_routes_start(struct nono_proxy_config *cfg, nono_error *err)
{
	for (size_t i = 0; i < cfg->nroutes; i++) {
		struct np_route *r = cfg->routes[i];
		int rc;
		pthread_mutex_init(&r->session_lock, NULL);
		r->started = true;
		if (r->source && !r->secret && (rc = load_secret(r, err)) < 0)
			return rc;
		if (r->secret) {
			unsigned char b[16];
			if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
				return nono_fail(err, -EIO, "getrandom: %s", strerror(errno));
			memcpy(r->placeholder, "nono_", 5);
			for (size_t k = 0; k < sizeof b; k++)
				snprintf(r->placeholder + 5 + 2 * k, 3, "%02x", b[k]);
			explicit_bzero(b, sizeof b);
		}
		if (r->tls && (rc = np_route_tls_init(r, err)) < 0)
			return rc;
	}
	return 0;
}

void np_route_set_placeholder(struct np_route *r, const char *placeholder)
{
	snprintf(r->placeholder, sizeof r->placeholder, "%s", placeholder);
}
