// qrterm.cpp: QR modules from the agent's Terminal text (qrterm.h).
#include "qrterm.h"

#include <string.h>

namespace {

// glyph returns the two modules (top, bottom dark) of the glyph at p, and
// its length, or 0 for anything else.
size_t glyph(const uint8_t *p, size_t n, int *top, int *bot)
{
	if (n >= 1 && p[0] == ' ') {
		*top = *bot = 1;
		return 1;
	}
	if (n >= 3 && p[0] == 0xE2 && p[1] == 0x96) {
		switch (p[2]) {
		case 0x88: // U+2588 FULL BLOCK
			*top = *bot = 0;
			return 3;
		case 0x80: // U+2580 UPPER HALF BLOCK: top light
			*top = 0;
			*bot = 1;
			return 3;
		case 0x84: // U+2584 LOWER HALF BLOCK: bottom light
			*top = 1;
			*bot = 0;
			return 3;
		}
	}
	return 0;
}

} // namespace

extern "C" int jk_qr_parse(const uint8_t *text, size_t n, uint8_t *dark, size_t cap)
{
	if (text == nullptr || dark == nullptr)
		return 0;
	int top, bot;
	// The first line gives the width.
	size_t i = 0;
	int width = 0;
	while (i < n && text[i] != '\n') {
		size_t g = glyph(text + i, n - i, &top, &bot);
		if (g == 0 || ++width > JK_QR_MAX_SIDE)
			return 0;
		i += g;
	}
	// Version 1 (21 modules) plus the quiet zone is the smallest code.
	if (i >= n || width < 21 + 8 || size_t(width) * size_t(width) > cap)
		return 0;
	int lines = (width + 1) / 2;
	i = 0;
	for (int line = 0; line < lines; line++) {
		int y = 2 * line;
		for (int x = 0; x < width; x++) {
			size_t g = glyph(text + i, n - i, &top, &bot);
			if (g == 0)
				return 0;
			dark[size_t(y) * size_t(width) + size_t(x)] = uint8_t(top);
			if (y + 1 < width)
				dark[size_t(y + 1) * size_t(width) + size_t(x)] = uint8_t(bot);
			else if (bot)
				return 0; // below the picture: light
			i += g;
		}
		if (i >= n || text[i] != '\n')
			return 0;
		i++;
	}
	return i == n ? width : 0;
}

extern "C" int jk_qr_render(const uint8_t *dark, int side, int scale, uint32_t *px, size_t cap)
{
	if (dark == nullptr || px == nullptr || side <= 0 || scale <= 0 || side > JK_QR_MAX_SIDE || scale > 16)
		return -1;
	size_t w = size_t(side) * size_t(scale);
	if (w * w > cap)
		return -1;
	for (size_t y = 0; y < w; y++)
		for (size_t x = 0; x < w; x++)
			px[y * w + x] = dark[(y / size_t(scale)) * size_t(side) + x / size_t(scale)] ? 0xFF000000u : 0xFFFFFFFFu;
	return 0;
}
