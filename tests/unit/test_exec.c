/* test_exec.c — nono_exec argument validation, program resolution and result handling.
 * (Behaviour under real policies is covered by tests/integration/test_exec.py.) */
#include "internal.h"
#include "unit.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static nono_caps *system_caps(void)
{
	nono_caps *c = nono_caps_new();
	const char *dirs[] = {"/usr", "/bin", "/lib", "/lib64", "/etc"};
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if (access(dirs[i], F_OK) == 0)
			CHECK_EQ_INT(nono_caps_allow_path(c, dirs[i], NONO_ACCESS_READ, NULL), 0);
	CHECK_EQ_INT(nono_caps_allow_file(c, "/dev/null", NONO_ACCESS_READ_WRITE, NULL), 0);
	return c;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	CHECK(fd >= 0);
	CHECK_EQ_INT(write(fd, text, strlen(text)), (long long)strlen(text));
	close(fd);
	chmod(path, mode);
}

static void test_opts_and_free(void)
{
	nono_exec_opts o;
	memset(&o, 0xab, sizeof o);
	nono_exec_opts_init(&o);
	CHECK(o.cwd == NULL && o.env == NULL && !o.inherit_env && o.timeout_secs == 0 &&
	      !o.capture && !o.pass_stdin && o.flags == 0 && o.audit == NULL && !o.foreground &&
	      o.audit_fd == -1 && !o.audit_allowed && !o.forward_signals && o.remove_dir == NULL);
	nono_exec_opts_init(NULL);
	nono_exec_result r;
	memset(&r, 0, sizeof r);
	nono_exec_result_free(&r);
	nono_exec_result_free(NULL);
}

static void test_invalid_arguments(nono_caps *caps)
{
	nono_exec_result r;
	nono_error e = {0};
	const char *argv[] = {"/bin/true", NULL};
	const char *empty[] = {"", NULL};
	nono_exec_opts o;
	nono_exec_opts_init(&o);
	CHECK_EQ_INT(nono_exec(NULL, argv, &o, &r, &e), -EINVAL);
	CHECK_EQ_INT(nono_exec(caps, NULL, &o, &r, &e), -EINVAL);
	CHECK_EQ_INT(nono_exec(caps, empty, &o, &r, &e), -EINVAL);
	CHECK_EQ_INT(nono_exec(caps, argv, &o, NULL, &e), -EINVAL);
	double bad[] = {-1, NAN, INFINITY};
	for (size_t i = 0; i < 3; i++) {
		o.timeout_secs = bad[i];
		CHECK_EQ_INT(nono_exec(caps, argv, &o, &r, &e), -EINVAL);
		CHECK(strstr(e.message, "timeout") != NULL);
		CHECK(r.out == NULL && r.exit_code == 0);
	}
	o.timeout_secs = 0;
	o.flags = 1u << 7;
	CHECK_EQ_INT(nono_exec(caps, argv, &o, &r, &e), -EINVAL);
	o.flags = 0;
	const char *ld[] = {"LD_PRELOAD=/x.so", NULL};
	o.env = ld;
	CHECK_EQ_INT(nono_exec(caps, argv, &o, &r, &e), -EINVAL);
	CHECK(strstr(e.message, "LD_PRELOAD") != NULL);
	/* NULL opts means defaults. */
	CHECK_EQ_INT(nono_exec(caps, argv, NULL, &r, &e), 0);
	CHECK_EQ_INT(r.exit_code, 0);
	nono_exec_result_free(&r);
}

static void test_resolution(nono_caps *caps, const char *dir)
{
	char path[512], pathenv[600];
	nono_exec_result r;
	nono_error e = {0};
	nono_exec_opts o;
	nono_exec_opts_init(&o);
	o.capture = true;
	o.cwd = dir;

	snprintf(path, sizeof path, "%s/tool", dir);
	write_file(path, "#!/bin/sh\necho tool:$0\n", 0755);
	snprintf(path, sizeof path, "%s/garbage", dir);
	write_file(path, "\x7f" "ELF not really", 0755);
	snprintf(path, sizeof path, "%s/plain", dir);
	write_file(path, "#!/bin/sh\n", 0644);

	/* Relative with a slash: relative to the child's cwd. */
	const char *rel[] = {"./tool", NULL};
	CHECK_EQ_INT(nono_exec(caps, rel, &o, &r, &e), 0);
	CHECK(r.out_len == 12 && memcmp(r.out, "tool:./tool\n", 12) == 0);
	nono_exec_result_free(&r);

	/* An empty PATH element means the cwd; the child's PATH decides, not ours. */
	const char *bare[] = {"tool", NULL};
	snprintf(pathenv, sizeof pathenv, "PATH=/nonexistent::/usr/bin:/bin");
	const char *env[] = {pathenv, NULL};
	o.env = env;
	CHECK_EQ_INT(nono_exec(caps, bare, &o, &r, &e), 0);
	CHECK_EQ_INT(r.exit_code, 0);
	nono_exec_result_free(&r);
	o.env = NULL;
	CHECK_EQ_INT(nono_exec(caps, bare, &o, &r, &e), -ENOENT);
	CHECK(strstr(e.message, "/usr/local/bin:/usr/bin:/bin") != NULL);

	/* Found in PATH but not executable: EACCES, like execvp. */
	const char *plain[] = {"plain", NULL};
	snprintf(pathenv, sizeof pathenv, "PATH=%s", dir);
	o.env = env;
	CHECK_EQ_INT(nono_exec(caps, plain, &o, &r, &e), -EACCES);
	o.env = NULL;

	/* Bad format: execve's ENOEXEC is "not executable". */
	const char *garbage[] = {"./garbage", NULL};
	CHECK_EQ_INT(nono_exec(caps, garbage, &o, &r, &e), -EACCES);
	CHECK(strstr(e.message, "format") != NULL);
}

static void test_timeout_and_signal(nono_caps *caps)
{
	nono_exec_result r;
	nono_error e = {0};
	nono_exec_opts o;
	nono_exec_opts_init(&o);
	o.timeout_secs = 0.2;
	const char *sleeper[] = {"/bin/sleep", "30", NULL};
	CHECK_EQ_INT(nono_exec(caps, sleeper, &o, &r, &e), 0);
	CHECK(r.timed_out);
	CHECK_EQ_INT(r.exit_code, 124);
	CHECK_EQ_INT(r.term_signal, SIGKILL);
	nono_exec_result_free(&r);

	o.timeout_secs = 0;
	const char *selfkill[] = {"/bin/sh", "-c", "kill -USR1 $$", NULL};
	CHECK_EQ_INT(nono_exec(caps, selfkill, &o, &r, &e), 0);
	CHECK(!r.timed_out);
	CHECK_EQ_INT(r.exit_code, -SIGUSR1);
	CHECK_EQ_INT(r.term_signal, SIGUSR1);
	nono_exec_result_free(&r);
}

/* Waits (bounded) for the command's readiness file, then sends `sig` to this process. */
struct sender {
	const char *ready;
	int sig;
};

static void *send_when_ready(void *arg)
{
	const struct sender *s = arg;
	struct timespec tick = {0, 10 * 1000000};
	for (int i = 0; i < 2000 && access(s->ready, F_OK) < 0; i++)
		nanosleep(&tick, NULL);
	kill(getpid(), s->sig);
	return NULL;
}

static void test_forward_signals(nono_caps *caps, const char *dir)
{
	nono_exec_result r;
	nono_error e = {0};
	nono_exec_opts o;
	nono_exec_opts_init(&o);
	o.forward_signals = true;
	o.capture = true; /* sh reports its killed `sleep` on stderr */
	const char *t[] = {"/bin/true", NULL};
	/* The caller must block the forwarded signals first. */
	CHECK_EQ_INT(nono_exec(caps, t, &o, &r, &e), -EINVAL);
	CHECK(strstr(e.message, "forward_signals") != NULL);

	sigset_t stop, old;
	sigemptyset(&stop);
	int sigs[] = {SIGTERM, SIGHUP, SIGINT, SIGQUIT};
	for (size_t i = 0; i < 4; i++)
		sigaddset(&stop, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	nono_caps *rw = nono_caps_clone(caps);
	CHECK_EQ_INT(nono_caps_allow_path(rw, dir, NONO_ACCESS_READ_WRITE, NULL), 0);
	for (size_t i = 0; i < 4; i++) {
		char ready[600], script[1400];
		snprintf(ready, sizeof ready, "%s/ready%zu", dir, i);
		/* The trap is set before the readiness file exists: the signal can only reach it. */
		snprintf(script, sizeof script,
			 "trap 'exit 9' %d; : > %s; i=0; while [ $i -lt 400 ]; do sleep 0.05; "
			 "i=$((i+1)); done; exit 3", sigs[i], ready);
		const char *argv[] = {"/bin/sh", "-c", script, NULL};
		struct sender snd = {ready, sigs[i]};
		pthread_t th;
		CHECK_EQ_INT(pthread_create(&th, NULL, send_when_ready, &snd), 0);
		CHECK_EQ_INT(nono_exec(rw, argv, &o, &r, &e), 0);
		pthread_join(th, NULL);
		CHECK_EQ_INT(r.exit_code, 9); /* the command's trap ran */
		nono_exec_result_free(&r);
		sigset_t pending;
		sigpending(&pending);
		CHECK(!sigismember(&pending, sigs[i])); /* taken by nono_exec, not left for us */
		unlink(ready);
	}
	/* With no command running, a signal stays pending for the caller. */
	CHECK_EQ_INT(nono_exec(rw, t, &o, &r, &e), 0);
	kill(getpid(), SIGTERM);
	sigset_t pending;
	sigpending(&pending);
	CHECK(sigismember(&pending, SIGTERM));
	int got;
	sigwait(&stop, &got);
	CHECK_EQ_INT(got, SIGTERM);
	nono_caps_free(rw);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* remove_dir: the reaper removes the tree the command wrote once it has exited, following no
 * symlink (the link's target survives), and leaves it when the option is not given. */
static void test_remove_dir(void)
{
	char tmp[] = "/tmp/nono-unit-rmdir.XXXXXX", keep[] = "/tmp/nono-unit-keep.XXXXXX";
	CHECK(mkdtemp(tmp) != NULL && mkdtemp(keep) != NULL);
	char target[600], script[2048];
	snprintf(target, sizeof target, "%s/target", keep);
	write_file(target, "precious\n", 0600);
	snprintf(script, sizeof script,
		 "mkdir -p %s/a/b && echo x > %s/a/b/f && ln -s %s %s/link && ln -s %s %s/a/dirlink "
		 "&& chmod 500 %s/a/b", tmp, tmp, target, tmp, keep, tmp, tmp);
	nono_caps *caps = system_caps();
	CHECK_EQ_INT(nono_caps_allow_path(caps, tmp, NONO_ACCESS_READ_WRITE, NULL), 0);
	const char *argv[] = {"/bin/sh", "-c", script, NULL};
	nono_exec_opts o;
	nono_exec_opts_init(&o);
	o.remove_dir = tmp;
	nono_exec_result r;
	nono_error e = {0};
	CHECK_EQ_INT(nono_exec(caps, argv, &o, &r, &e), 0);
	CHECK_EQ_INT(r.exit_code, 0);
	nono_exec_result_free(&r);
	CHECK(access(tmp, F_OK) != 0 && errno == ENOENT);
	CHECK(access(target, R_OK) == 0 && access(keep, F_OK) == 0);
	/* without the option the directory stays */
	CHECK(mkdir(tmp, 0700) == 0);
	o.remove_dir = NULL;
	const char *touch[] = {"/bin/true", NULL};
	CHECK_EQ_INT(nono_exec(caps, touch, &o, &r, &e), 0);
	nono_exec_result_free(&r);
	CHECK(access(tmp, F_OK) == 0);
	rmdir(tmp);
	unlink(target);
	rmdir(keep);
	nono_caps_free(caps);
}

int main(void)
{
	char dir[] = "/tmp/nono-unit-exec.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	nono_caps *caps = system_caps();
	CHECK_EQ_INT(nono_caps_allow_path(caps, dir, NONO_ACCESS_READ, NULL), 0);
	test_opts_and_free();
	test_invalid_arguments(caps);
	test_resolution(caps, dir);
	test_timeout_and_signal(caps);
	test_forward_signals(caps, dir);
	test_remove_dir();
	nono_caps_free(caps);
	const char *names[] = {"tool", "garbage", "plain"};
	for (size_t i = 0; i < 3; i++) {
		char p[600];
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
	UNIT_DONE();
}
