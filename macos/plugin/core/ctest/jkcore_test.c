/*
 * jkcore_test.c: C unit tests of the plugin core, built by the host
 * compiler with AddressSanitizer and UndefinedBehaviorSanitizer and run by
 * TestC (ctest_test.go) in `make test`. Each CHECK prints the failing line
 * and the program exits 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../jkcore.h"

static int failures;
#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			failures++;                                        \
		}                                                          \
	} while (0)

/* Agent messages as the Go agent encodes them (protocol.EncodeIPCMsg). */
static const uint8_t status_otp[] = {7, 0xa2, 0x01, 0xf4, 0x02, 0xf5};
static const uint8_t qr[] = {2, 0xa4, 0x01, 0x64, 'J', 'K', ':', 'x', 0x02, 0x42, 0x89, 'P', 0x03, 0x60, 0x04, 0x18, 100};
static const uint8_t number42[] = {10, 0xa1, 0x01, 0x18, 42};
static const uint8_t number9[] = {10, 0xa1, 0x01, 0x09};
static const uint8_t cred[] = {3, 0xa4, 0x01, 0x67, 'm', 's', 'p', '-', 'n', 'i', 'k', 0x02, 0x44, 'p', 'w', '4', '2',
			       0x03, 0x50, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0x04, 0x1a, 0x6b, 0x49, 0xd2, 0x00};
static const uint8_t denied[] = {4, 0xa2, 0x01, 0x05, 0x02, 0x63, 'n', 'o', '!'};
static const uint8_t ended[] = {6, 0xa1, 0x01, 0xf5};

static void test_encoders(void)
{
	struct jkc c;
	uint8_t out[64];
	jkc_init(&c);
	static const uint8_t begin[] = {1, 0xa2, 0x01, 0x65, 'l', 'o', 'g', 'o', 'n', 0x02, 0x00};
	size_t n = jkc_begin(&c, out, sizeof out, "logon");
	CHECK(n == sizeof begin && memcmp(out, begin, n) == 0);
	CHECK(c.state == JKC_WAITING);
	CHECK(jkc_begin(&c, out, sizeof out, "logon") == 0);
	static const uint8_t push[] = {9, 0xa1, 0x01, 0x63, 'a', '@', 'b'};
	n = jkc_push(&c, out, sizeof out, "a@b");
	CHECK(n == sizeof push && memcmp(out, push, n) == 0);
	CHECK(c.state == JKC_PUSH_SENT);

	jkc_init(&c);
	jkc_begin(&c, out, sizeof out, "elevate");
	CHECK(jkc_on_message(&c, status_otp, sizeof status_otp) == JKC_EV_STATUS && c.otp && !c.online);
	static const uint8_t code[] = {8, 0xa2, 0x01, 0x63, 'n', 'i', 'k', 0x02, 0x66, '1', '2', '3', '4', '5', '6'};
	CHECK(jkc_code(&c, out, 8, "nik", "123456") == 0); /* does not fit */
	for (size_t i = 0; i < 8; i++)
		CHECK(out[i] == 0); /* a failed encoding leaves nothing */
	n = jkc_code(&c, out, sizeof out, "nik", "123456");
	CHECK(n == sizeof code && memcmp(out, code, n) == 0);
	CHECK(c.state == JKC_CODE_SENT);

	char long_email[JK_MAX_EMAIL + 2];
	memset(long_email, 'a', sizeof long_email - 1);
	long_email[sizeof long_email - 1] = 0;
	jkc_init(&c);
	jkc_begin(&c, out, sizeof out, "logon");
	uint8_t big[400];
	CHECK(jkc_push(&c, big, sizeof big, long_email) == 0);
	CHECK(jkc_push(&c, big, sizeof big, "") == 0);
	CHECK(c.state == JKC_WAITING);
}

static void test_machine(void)
{
	struct jkc c;
	uint8_t out[64];
	jkc_init(&c);
	CHECK(jkc_on_message(&c, qr, sizeof qr) == JKC_EV_ERROR); /* before Begin */
	jkc_init(&c);
	jkc_begin(&c, out, sizeof out, "logon");
	CHECK(jkc_on_message(&c, qr, sizeof qr) == JKC_EV_QR);
	CHECK(c.state == JKC_SHOWING_QR && strcmp(c.qr_text, "JK:x") == 0 && c.qr_png_len == 2 && c.qr_expires == 100);
	CHECK(jkc_push(&c, out, sizeof out, "n@e") > 0);
	CHECK(jkc_on_message(&c, qr, sizeof qr) == JKC_EV_QR && c.state == JKC_PUSH_SENT);
	CHECK(jkc_on_message(&c, number42, sizeof number42) == JKC_EV_NUMBER && c.number == 42 && c.state == JKC_PUSH_NUMBER);
	CHECK(jkc_on_message(&c, cred, sizeof cred) == JKC_EV_CREDENTIAL);
	CHECK(c.state == JKC_CREDENTIAL && strcmp(c.username, "msp-nik") == 0 && strcmp(c.password, "pw42") == 0);
	CHECK(c.session[15] == 16 && c.deadline == 1800000000);
	CHECK(jkc_done(&c));
	CHECK(jkc_on_message(&c, denied, sizeof denied) == JKC_EV_ERROR && c.state == JKC_FAILED);
	for (size_t i = 0; i < sizeof c.password; i++)
		CHECK(c.password[i] == 0);

	jkc_init(&c);
	jkc_begin(&c, out, sizeof out, "unlock");
	CHECK(jkc_on_message(&c, number42, sizeof number42) == JKC_EV_ERROR); /* no push sent */
	jkc_init(&c);
	jkc_begin(&c, out, sizeof out, "unlock");
	jkc_push(&c, out, sizeof out, "n@e");
	CHECK(jkc_on_message(&c, number9, sizeof number9) == JKC_EV_ERROR); /* out of 10..99 */
	jkc_init(&c);
	jkc_begin(&c, out, sizeof out, "unlock");
	CHECK(jkc_on_message(&c, ended, sizeof ended) == JKC_EV_ERROR);
	jkc_init(&c);
	jkc_begin(&c, out, sizeof out, "unlock");
	CHECK(jkc_on_message(&c, denied, sizeof denied) == JKC_EV_DENIED && c.denied_code == 5 && strcmp(c.reason, "no!") == 0);

	/* Every truncation of every message is refused, and reads stay inside it. */
	const uint8_t *msgs[] = {status_otp, qr, number42, cred, denied, ended};
	size_t lens[] = {sizeof status_otp, sizeof qr, sizeof number42, sizeof cred, sizeof denied, sizeof ended};
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		for (size_t n = 0; n < lens[i]; n++) {
			uint8_t *copy = malloc(n ? n : 1);
			memcpy(copy, msgs[i], n);
			struct jk_msg m;
			CHECK(jk_decode(copy, n, &m) < 0);
			free(copy);
		}
		uint8_t *longer = malloc(lens[i] + 1);
		memcpy(longer, msgs[i], lens[i]);
		longer[lens[i]] = 0;
		struct jk_msg m;
		CHECK(jk_decode(longer, lens[i] + 1, &m) < 0); /* trailing byte */
		CHECK(jk_decode(longer, lens[i], &m) == 0);
		free(longer);
	}
	jkc_wipe(&c);
	CHECK(c.state == JKC_IDLE && c.reason[0] == 0);
}

static void test_frames(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	uint8_t *buf = malloc(JK_MAX_FRAME);
	CHECK(jkc_write_frame(sv[0], qr, sizeof qr) == 0);
	CHECK(jkc_read_frame(sv[1], buf, JK_MAX_FRAME, 1000) == (long)sizeof qr && memcmp(buf, qr, sizeof qr) == 0);
	CHECK(jkc_write_frame(sv[0], qr, 0) < 0);
	CHECK(jkc_write_frame(sv[0], buf, JK_MAX_FRAME + 1) < 0);
	CHECK(jkc_read_frame(sv[1], buf, JK_MAX_FRAME, 20) < 0); /* nothing sent: timeout */
	static const uint8_t huge[] = {0, 0, 0x40, 0x01}; /* 16 385 */
	CHECK(write(sv[0], huge, 4) == 4);
	CHECK(jkc_read_frame(sv[1], buf, JK_MAX_FRAME, 1000) < 0);
	static const uint8_t half[] = {0, 0, 0, 9, 1, 2};
	CHECK(write(sv[0], half, sizeof half) == (ssize_t)sizeof half);
	close(sv[0]);
	CHECK(jkc_read_frame(sv[1], buf, JK_MAX_FRAME, 1000) < 0); /* closed mid-frame */
	close(sv[1]);
	free(buf);
	CHECK(jkc_connect("/nonexistent/agent.sock", 0) < 0);
	char longpath[200];
	memset(longpath, 'a', sizeof longpath - 1);
	longpath[sizeof longpath - 1] = 0;
	CHECK(jkc_connect(longpath, 0) < 0);
}

int main(void)
{
	test_encoders();
	test_machine();
	test_frames();
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("jkcore C tests: ok\n");
	return 0;
}
