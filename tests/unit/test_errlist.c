/* errlist: message formats and moving lists. */
#include <criterion/criterion.h>

#include "tlsplice/errlist.h"

Test(errlist, formats_every_variant)
{
	struct errlist el;

	errlist_init(&el);
	errlist_add(&el, "demo.ini", 14, "backend app", "server", "bad port '%s'", "99999");
	errlist_add(&el, "f.ini", 7, "frontnd web", NULL, "unknown section");
	errlist_add(&el, "f.ini", 2, NULL, "workers", "outside any section");
	errlist_add(&el, "f.ini", 0, NULL, NULL, "cannot open: %s", "No such file or directory");
	cr_assert_eq(el.n, 4);
	cr_assert_str_eq(el.msgs[0], "demo.ini:14: [backend app] server: bad port '99999'");
	cr_assert_str_eq(el.msgs[1], "f.ini:7: [frontnd web] unknown section");
	cr_assert_str_eq(el.msgs[2], "f.ini:2: workers: outside any section");
	cr_assert_str_eq(el.msgs[3], "f.ini: cannot open: No such file or directory");
	errlist_finish(&el);
	cr_assert_eq(el.n, 0);
	cr_assert_null(el.msgs);
}

Test(errlist, grows_past_its_first_allocation)
{
	struct errlist el;

	errlist_init(&el);
	for (int i = 1; i <= 100; i++)
		errlist_add(&el, "f.ini", i, "global", "workers", "error %d", i);
	cr_assert_eq(el.n, 100);
	cr_assert_str_eq(el.msgs[99], "f.ini:100: [global] workers: error 100");
	errlist_finish(&el);
}

Test(errlist, move_appends_and_empties_the_source)
{
	struct errlist a, b;

	errlist_init(&a);
	errlist_init(&b);
	errlist_add(&a, "f.ini", 1, NULL, NULL, "first");
	errlist_add(&b, "f.ini", 2, NULL, NULL, "second");
	errlist_add(&b, "f.ini", 3, NULL, NULL, "third");
	errlist_move(&a, &b);
	cr_assert_eq(a.n, 3);
	cr_assert_eq(b.n, 0);
	cr_assert_str_eq(a.msgs[0], "f.ini:1: first");
	cr_assert_str_eq(a.msgs[2], "f.ini:3: third");
	errlist_move(&a, &a); /* same list: nothing to do */
	cr_assert_eq(a.n, 3);
	errlist_finish(&a);
	errlist_finish(&b);
	errlist_finish(NULL);
}

Test(errlist, control_bytes_in_quoted_input_are_escaped)
{
	struct errlist el;

	errlist_init(&el);
	errlist_add(&el, "f\033.ini", 3, "frontend \033]0;x\007", "k\r\ney", "bad value '%s'",
		    "\033[2J\x01\x7f\x80\xff\t ok");
	cr_assert_eq(el.n, 1);
	cr_assert_str_eq(el.msgs[0], "f\\x1b.ini:3: [frontend \\x1b]0;x\\x07] k\\x0d\\x0aey: "
				     "bad value '\\x1b[2J\\x01\\x7f\\x80\\xff\\x09 ok'");
	errlist_finish(&el);
}

Test(errlist, escape_bounds_its_output)
{
	char out[8];

	cr_assert_eq(errlist_escape("\033\033\033", out, sizeof(out)), out);
	cr_assert_str_eq(out, "\\x1b"); /* never half an escape */
	cr_assert_str_eq(errlist_escape("plain", out, sizeof(out)), "plain");
	cr_assert_str_eq(errlist_escape("longer than eight", out, sizeof(out)), "longer ");
}
