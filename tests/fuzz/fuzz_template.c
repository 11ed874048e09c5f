/*
 * fuzz_template.c - common/template.c: any bytes as a template file
 * (template_load reads it through a memfd), rendered with the placeholders
 * the mails use; and any text rendered directly. A loaded template always
 * renders when every placeholder it can name has a value.
 */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/template.h"
#include "fuzz.h"

static const struct template_var VARS[] = {
	{"afzenders", "Gemeente {{Demostad}}"},
	{"code", "123456"},
	{"portaal_url", "https://portaal.example.nl/"},
	{"aantal", "3"},
	{"berichttype", "AANSLAG"},
	{"naam", ""},
};
#define NVARS (sizeof(VARS) / sizeof(VARS[0]))

static int fd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fd < 0 && (fd = memfd_create("fuzz-template", 0)) < 0)
		abort();
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	char path[64], err[512];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct template t;
	if (template_load(path, &t, err, sizeof(err))) {
		free(template_render(t.subject, VARS, NVARS));
		free(template_render(t.body, VARS, NVARS));
		template_free(&t);
	} else if (!err[0]) {
		abort();
	}
	char *s = fuzz_cstr(data, size);
	free(template_render(s, VARS, NVARS));
	free(template_render(s, NULL, 0));
	free(s);
	return 0;
}
