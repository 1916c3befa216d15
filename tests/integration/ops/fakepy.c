/* SPDX-License-Identifier: MIT */
/* A program that looks like a CPython pykill has no layout for: it exports
 * _PyRuntime and Py_Version (3.99.0 final) and has no _Py_DebugOffsets
 * cookie. `pykill ps` must list it with the reason, not hide it. Built
 * with the name python3.99; waits until its stdin closes. */
#include <stdint.h>
#include <unistd.h>

__attribute__((used)) const uint32_t Py_Version = 0x036300f0u;
__attribute__((used)) char _PyRuntime[4096];

int main(void)
{
	char c;

	while (read(0, &c, 1) > 0)
		;
	return 0;
}
