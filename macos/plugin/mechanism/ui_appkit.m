/*
 * ui_appkit.m: the mechanism's window (ui.h) in AppKit, inside
 * SecurityAgent. One window, above the login window, with: the QR code
 * and a line of text; "Technician email" + "Send to my phone" (push);
 * the number to pick on the phone; "Username" + "Code" while the agent
 * accepts offline codes; the agent's refusal; and, always, "Local
 * account" + "Password" + "Log in" for accounts outside jitkey.
 *
 * Built only on macOS (Makefile). Not built or run in this repository's
 * CI: there is no macOS SDK there.
 */
#import <AppKit/AppKit.h>

#include <string.h>

#include "jkcore.h"
#include "ui.h"

@interface JKWindowController : NSObject
@property(strong) NSWindow *window;
@property(strong) NSImageView *qr;
@property(strong) NSTextField *status, *number;
@property(strong) NSTextField *email, *otpUser;
@property(strong) NSSecureTextField *otpCode, *localPassword;
@property(strong) NSTextField *localUser;
@property(strong) NSButton *pushButton, *codeButton, *localButton;
@property(assign) struct jk_ui_actions actions;
@property(assign) enum jk_ui_outcome outcome;
@property(assign) BOOL finished;
@end

static NSTextField *label(NSString *s, NSRect r)
{
	NSTextField *t = [[NSTextField alloc] initWithFrame:r];
	t.stringValue = s;
	t.editable = NO;
	t.bezeled = NO;
	t.drawsBackground = NO;
	return t;
}

@implementation JKWindowController
- (instancetype)initElevate:(BOOL)elevate actions:(const struct jk_ui_actions *)a
{
	if ((self = [super init]) == nil)
		return nil;
	_actions = *a;
	NSRect frame = NSMakeRect(0, 0, 420, 640);
	_window = [[NSWindow alloc] initWithContentRect:frame
					      styleMask:NSWindowStyleMaskTitled
						backing:NSBackingStoreBuffered
						  defer:NO];
	_window.title = elevate ? @"jitkey: administrator approval" : @"jitkey: log in";
	_window.level = NSScreenSaverWindowLevel + 1;
	_window.canBecomeVisibleWithoutLogin = YES;
	NSView *v = _window.contentView;
	_qr = [[NSImageView alloc] initWithFrame:NSMakeRect(60, 330, 300, 300)];
	_qr.imageScaling = NSImageScaleProportionallyUpOrDown;
	[v addSubview:_qr];
	_status = label(@"Connecting to the jitkey agent…", NSMakeRect(20, 300, 380, 24));
	[v addSubview:_status];
	_number = label(@"", NSMakeRect(20, 262, 380, 34));
	_number.font = [NSFont boldSystemFontOfSize:28];
	[v addSubview:_number];
	_email = [[NSTextField alloc] initWithFrame:NSMakeRect(20, 228, 250, 24)];
	_email.placeholderString = @"Technician email";
	[v addSubview:_email];
	_pushButton = [NSButton buttonWithTitle:@"Send to my phone" target:self action:@selector(push:)];
	_pushButton.frame = NSMakeRect(276, 224, 124, 32);
	[v addSubview:_pushButton];
	_otpUser = [[NSTextField alloc] initWithFrame:NSMakeRect(20, 190, 150, 24)];
	_otpUser.placeholderString = @"Username";
	_otpCode = [[NSSecureTextField alloc] initWithFrame:NSMakeRect(176, 190, 94, 24)];
	_otpCode.placeholderString = @"Code";
	_codeButton = [NSButton buttonWithTitle:@"Use code" target:self action:@selector(code:)];
	_codeButton.frame = NSMakeRect(276, 186, 124, 32);
	for (NSView *x in @[ _otpUser, _otpCode, _codeButton ]) {
		x.hidden = YES;
		[v addSubview:x];
	}
	[v addSubview:label(@"Local account", NSMakeRect(20, 120, 380, 20))];
	_localUser = [[NSTextField alloc] initWithFrame:NSMakeRect(20, 92, 380, 24)];
	_localUser.placeholderString = @"Name";
	_localPassword = [[NSSecureTextField alloc] initWithFrame:NSMakeRect(20, 62, 380, 24)];
	_localPassword.placeholderString = @"Password";
	_localButton = [NSButton buttonWithTitle:@"Log in" target:self action:@selector(local:)];
	_localButton.frame = NSMakeRect(300, 20, 100, 32);
	_localButton.keyEquivalent = @"\r";
	NSButton *cancel = [NSButton buttonWithTitle:@"Cancel" target:self action:@selector(cancel:)];
	cancel.frame = NSMakeRect(190, 20, 100, 32);
	for (NSView *x in @[ _localUser, _localPassword, _localButton, cancel ])
		[v addSubview:x];
	[_window center];
	return self;
}

- (void)push:(id)sender
{
	(void)sender;
	if (_actions.push)
		_actions.push(_actions.ctx, _email.stringValue.UTF8String);
}

- (void)code:(id)sender
{
	(void)sender;
	if (_actions.code)
		_actions.code(_actions.ctx, _otpUser.stringValue.UTF8String, _otpCode.stringValue.UTF8String);
	_otpCode.stringValue = @"";
}

- (void)local:(id)sender
{
	(void)sender;
	[self finish:JK_UI_LOCAL];
}

- (void)cancel:(id)sender
{
	(void)sender;
	[self finish:JK_UI_CANCEL];
}

- (void)finish:(enum jk_ui_outcome)o
{
	if (_finished)
		return;
	_finished = YES;
	_outcome = o;
	[NSApp stopModal];
}

- (void)show:(NSDictionary *)d
{
	int state = [d[@"state"] intValue];
	BOOL down = [d[@"down"] boolValue], otp = [d[@"otp"] boolValue];
	NSData *png = d[@"png"];
	if (png.length > 0)
		_qr.image = [[NSImage alloc] initWithData:png];
	_qr.hidden = down || png.length == 0;
	_number.stringValue = state == JKC_PUSH_NUMBER ? [NSString stringWithFormat:@"Pick %@ on your phone", d[@"number"]] : @"";
	NSString *reason = d[@"reason"];
	switch (state) {
	case JKC_DENIED:
	case JKC_FAILED:
		_status.stringValue = reason.length ? reason : @"Not approved";
		break;
	case JKC_PUSH_SENT:
		_status.stringValue = @"Request sent to the phone…";
		break;
	case JKC_SECOND_APPROVAL:
		/* SPEC.md 5.7.7: no names; the core dropped the QR code. */
		_status.stringValue = @"Approved. Waiting for a second approver…";
		break;
	default:
		_status.stringValue = down ? (reason ?: @"jitkey is unavailable") : @"Scan the code with the jitkey app";
	}
	BOOL live = !down && state != JKC_DENIED && state != JKC_FAILED && state != JKC_CREDENTIAL && state != JKC_SECOND_APPROVAL;
	_email.hidden = _pushButton.hidden = !live;
	_otpUser.hidden = _otpCode.hidden = _codeButton.hidden = !(live && otp);
}
@end

struct jk_ui {
	void *controller; /* JKWindowController, retained */
};

struct jk_ui *jk_ui_open(int elevate, const struct jk_ui_actions *actions)
{
	struct jk_ui *ui = calloc(1, sizeof *ui);
	if (ui == NULL)
		return NULL;
	JKWindowController *c = [[JKWindowController alloc] initElevate:elevate != 0 actions:actions];
	ui->controller = (__bridge_retained void *)c;
	return ui;
}

void jk_ui_update(struct jk_ui *ui, const struct jk_ui_view *v)
{
	NSDictionary *d = @{
		@"state" : @(v->state),
		@"otp" : @(v->otp),
		@"down" : @(v->agent_down),
		@"number" : @(v->number),
		@"png" : [NSData dataWithBytes:v->png length:v->png_len],
		@"reason" : v->reason ? [NSString stringWithUTF8String:v->reason] ?: @"" : @"",
	};
	JKWindowController *c = (__bridge JKWindowController *)ui->controller;
	dispatch_async(dispatch_get_main_queue(), ^{
		[c show:d];
	});
}

void jk_ui_finish(struct jk_ui *ui, enum jk_ui_outcome outcome)
{
	JKWindowController *c = (__bridge JKWindowController *)ui->controller;
	dispatch_async(dispatch_get_main_queue(), ^{
		[c finish:outcome];
	});
}

static void copy_field(char *dst, NSString *s)
{
	const char *u = s.UTF8String;
	size_t n = u ? strlen(u) : 0;
	if (n > JK_UI_MAX)
		n = 0; /* too long: refused */
	memcpy(dst, u, n);
	dst[n] = 0;
}

void jk_ui_run(struct jk_ui *ui, struct jk_ui_result *res)
{
	JKWindowController *c = (__bridge JKWindowController *)ui->controller;
	[c.window makeKeyAndOrderFront:nil];
	[NSApp runModalForWindow:c.window];
	res->outcome = c.outcome;
	if (c.outcome == JK_UI_LOCAL) {
		copy_field(res->username, c.localUser.stringValue);
		copy_field(res->password, c.localPassword.stringValue);
	}
	c.localPassword.stringValue = @"";
}

void jk_ui_close(struct jk_ui *ui)
{
	if (ui == NULL)
		return;
	JKWindowController *c = (__bridge_transfer JKWindowController *)ui->controller;
	[c.window orderOut:nil];
	c = nil;
	free(ui);
}
