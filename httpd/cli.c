/*
 * getopt_long as the daemon and the admin CLI use it: long options only
 * by their whole name (an abbreviation today is a different option
 * tomorrow), and every error names the option and says where the help is.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "httpd.h"
#include "speechfs/banned.h"

static const struct option *find_long(const struct option *lo, const char *name,
				      size_t n)
{
	for (; lo->name; lo++)
		if (strlen(lo->name) == n && strncmp(lo->name, name, n) == 0)
			return lo;
	return NULL;
}

/* The long option that starts like name, for "did you mean". */
static const char *near(const struct option *lo, const char *name, size_t n)
{
	size_t k;

	for (k = n; k >= 3; k--)
		for (const struct option *o = lo; o->name; o++)
			if (strncmp(o->name, name, k) == 0)
				return o->name;
	return NULL;
}

static int short_takes_arg(const char *shortopts, char c)
{
	const char *p = strchr(shortopts, c);

	return c != ':' && p && p[1] == ':';
}

/*
 * The word after "--name" is its value, unless there is none or it is
 * one of our options ("--name --store DIR"): a value that looks like an
 * option is given as --name=--VALUE.
 */
static int value_ok(const char *prog, const struct option *lo,
		    const struct option *o, const char *next)
{
	const char *eq;

	if (next && strncmp(next, "--", 2) == 0 && next[2]) {
		eq = strchr(next, '=');
		if (!find_long(lo, next + 2,
			       eq ? (size_t)(eq - next - 2) : strlen(next + 2)))
			return 1;
	} else if (next) {
		return 1;
	}
	fprintf(stderr, "%s: option '--%s' needs a value\n", prog, o->name);
	return 0;
}

int cli_check_args(const char *prog, int argc, char **argv,
		   const char *shortopts, const struct option *lo)
{
	const struct option *o;
	const char *a, *eq, *guess;
	size_t n;
	int i;

	for (i = 1; i < argc; i++) {
		a = argv[i];
		if (strcmp(a, "--") == 0)
			break;
		if (a[0] != '-' || a[1] == '\0')
			continue;
		if (a[1] != '-') {
			/* -c FILE: the next word is the value */
			if (short_takes_arg(shortopts, a[strlen(a) - 1]) &&
			    strlen(a) == 2)
				i++;
			continue;
		}
		eq = strchr(a, '=');
		n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		o = find_long(lo, a + 2, n);
		if (!o) {
			guess = near(lo, a + 2, n);
			fprintf(stderr, "%s: unknown option '%.*s'", prog,
				(int)(n + 2), a);
			if (guess)
				fprintf(stderr, " (did you mean '--%s'?)",
					guess);
			fprintf(stderr, "; see '%s --help'\n", prog);
			return -1;
		}
		if (o->has_arg == no_argument && eq) {
			fprintf(stderr, "%s: option '--%s' takes no value\n",
				prog, o->name);
			return -1;
		}
		if (o->has_arg == required_argument && !eq &&
		    !value_ok(prog, lo, o, i + 1 < argc ? argv[i + 1] : NULL))
			return -1;
		if (o->has_arg == required_argument && !eq)
			i++;
	}
	return 0;
}

static const char *name_of(const struct option *lo, int val)
{
	for (; lo->name; lo++)
		if (lo->val == val)
			return lo->name;
	return NULL;
}

int cli_getopt(const char *prog, int argc, char **argv, const char *shortopts,
	       const struct option *lo)
{
	const char *name;
	int c;

	opterr = 0;
	c = getopt_long(argc, argv, shortopts, lo, NULL);
	if (c == ':') {
		name = name_of(lo, optopt);
		if (name)
			fprintf(stderr, "%s: option '--%s' needs a value\n",
				prog, name);
		else
			fprintf(stderr, "%s: option '-%c' needs a value\n",
				prog, optopt);
		return '?';
	}
	if (c == '?') {
		if (optopt)
			fprintf(stderr,
				"%s: unknown option '-%c'; see '%s "
				"--help'\n",
				prog, optopt, prog);
		else
			fprintf(stderr,
				"%s: unknown option '%s'; see '%s "
				"--help'\n",
				prog, argv[optind - 1], prog);
	}
	return c;
}
