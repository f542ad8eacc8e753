/* Declarations transcribed from Apple's documentation; see README.md. */
#ifndef JK_STUB_MEMBERSHIP_H
#define JK_STUB_MEMBERSHIP_H
typedef unsigned char uuid_t[16];
int mbr_user_name_to_uuid(const char *name, uuid_t uu);
int mbr_group_name_to_uuid(const char *name, uuid_t uu);
int mbr_check_membership(const uuid_t user, const uuid_t group, int *ismember);
#endif
