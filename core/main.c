/* Placeholder entry point while the run driver is written; replaced in the same series. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "crosvm: not built yet\n");
	return 1;
}
