/* test_intercept.c — the certificate side of TLS interception (intercept_ca.c): the session CA and
 * its files (no key written), leaf certificates (issuer, SAN for names and IPs, serverAuth, signed
 * by the CA), the bounded leaf cache, and the files' removal. */
#include "../../src/lib/proxy/proxy_int.h"
#include "unit.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static X509 *read_ca(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	return x;
}

static bool san_has(X509 *x, int type, const char *want)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	bool found = false;
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		if (g->type != type)
			continue;
		if (type == GEN_DNS)
			found |= !strcmp((const char *)ASN1_STRING_get0_data(g->d.dNSName), want);
		else if (g->d.iPAddress->length == 4)
			found |= !memcmp(g->d.iPAddress->data, want, 4);
	}
	GENERAL_NAMES_free(names);
	return found;
}

int main(void)
{
	char dir[] = "/tmp/nono-test-intercept-XXXXXX", ca_path[128], bundle_path[128], sys_path[128];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sys_path, sizeof sys_path, "%s/system.pem", dir);
	FILE *f = fopen(sys_path, "w");
	fputs("# pretend system bundle\n", f);
	fclose(f);
	setenv("SSL_CERT_FILE", sys_path, 1);

	nono_proxy_config *cfg = nono_proxy_config_new();
	nono_error err = {0};
	CHECK_EQ_INT(nono_proxy_config_set_intercept_ca_dir(cfg, "relative", &err), -EINVAL);
	CHECK_EQ_INT(nono_proxy_config_set_intercept_ca_dir(cfg, "/nonexistent-nono", &err), -ENOENT);
	CHECK_EQ_INT(nono_proxy_config_set_intercept_ca_dir(cfg, dir, &err), 0);
	CHECK_EQ_INT(np_intercept_add_host(cfg, "*.example.com", &err), 0);
	struct nono_proxy_config *run = nono_proxy_config_clone(cfg);
	CHECK(run && run->icpt == NULL && run->nintercept == 1);
	CHECK_EQ_INT(np_intercept_prepare(run, &err), 0);

	snprintf(ca_path, sizeof ca_path, "%s/nono-ca.pem", dir);
	snprintf(bundle_path, sizeof bundle_path, "%s/nono-ca-bundle.pem", dir);
	CHECK_STR(np_intercept_ca_path(run), ca_path);
	CHECK_STR(np_intercept_bundle_path(run), bundle_path);
	CHECK(np_intercept_bundle_path(cfg) == NULL);
	char *b = slurp(bundle_path);
	CHECK(b && !strncmp(b, "# pretend system bundle\n", 24) && strstr(b, "BEGIN CERTIFICATE"));
	CHECK(b && !strstr(b, "PRIVATE KEY"));
	X509 *ca = read_ca(ca_path);
	CHECK(ca != NULL);
	CHECK(ca && X509_check_ca(ca) == 1);
	EVP_PKEY *ca_pub = ca ? X509_get0_pubkey(ca) : NULL;

	const char *why = "";
	SSL_CTX *a = np_intercept_leaf(run->icpt, "api.example.com", &why);
	SSL_CTX *a2 = np_intercept_leaf(run->icpt, "api.example.com", &why);
	CHECK(a && a == a2); /* cached */
	X509 *leaf = a ? SSL_CTX_get0_certificate(a) : NULL;
	CHECK(leaf && ca_pub && X509_verify(leaf, ca_pub) == 1);
	CHECK(leaf && X509_check_issued(ca, leaf) == X509_V_OK);
	CHECK(leaf && san_has(leaf, GEN_DNS, "api.example.com"));
	CHECK(leaf && X509_check_host(leaf, "api.example.com", 0, 0, NULL) == 1);
	CHECK(leaf && X509_check_host(leaf, "other.example.com", 0, 0, NULL) != 1);
	CHECK(leaf && X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0) == 1);
	CHECK(leaf && X509_check_ca(leaf) == 0);
	SSL_CTX *ip = np_intercept_leaf(run->icpt, "10.1.2.3", &why);
	X509 *ipleaf = ip ? SSL_CTX_get0_certificate(ip) : NULL;
	CHECK(ipleaf && san_has(ipleaf, GEN_IPADD, "\x0a\x01\x02\x03"));
	CHECK(ipleaf && X509_check_ip_asc(ipleaf, "10.1.2.3", 0) == 1);
	/* Bounded: 300 more hosts evict the least recently used; contexts in use stay valid. */
	for (int i = 0; i < 300; i++) {
		char h[64];
		snprintf(h, sizeof h, "h%d.example.com", i);
		SSL_CTX *x = np_intercept_leaf(run->icpt, h, &why);
		CHECK(x != NULL);
		SSL_CTX_free(x);
	}
	SSL_CTX *a3 = np_intercept_leaf(run->icpt, "api.example.com", &why);
	CHECK(a3 && a3 != a && SSL_CTX_get0_certificate(a) == leaf); /* re-minted; the old one intact */
	SSL_CTX_free(a);
	SSL_CTX_free(a2);
	SSL_CTX_free(a3);
	SSL_CTX_free(ip);
	X509_free(ca);

	nono_proxy_config_free(run); /* removes the files */
	CHECK(access(ca_path, F_OK) != 0 && access(bundle_path, F_OK) != 0);
	nono_proxy_config_free(cfg);
	unlink(sys_path);
	CHECK(rmdir(dir) == 0);
	UNIT_DONE();
}
