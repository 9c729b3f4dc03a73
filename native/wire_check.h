/* Compile-time proof that wire.h matches the B7 layout (offsets from lgmp-kvmfr.md 2.2-2.4, 5.1-5.5). */
#ifndef KV_WIRE_CHECK_H
#define KV_WIRE_CHECK_H
#include <stddef.h>

#define WIRE_AT(type, field, off) _Static_assert(offsetof(struct type, field) == (off), #type "." #field)
#define WIRE_SIZE(type, sz)       _Static_assert(sizeof(struct type) == (sz), "sizeof " #type)

WIRE_SIZE(lgmp_client_message, 68);
WIRE_AT(lgmp_header_queue, newSubCount, 8);
WIRE_AT(lgmp_header_queue, position, 16);
WIRE_AT(lgmp_header_queue, messagesOffset, 20);
WIRE_AT(lgmp_header_queue, timeout, 24);
WIRE_AT(lgmp_header_queue, clientID, 280);
WIRE_AT(lgmp_header_queue, lock, 408);
WIRE_AT(lgmp_header_queue, subs, 416);
WIRE_AT(lgmp_header_queue, start, 424);
WIRE_AT(lgmp_header_queue, msgTimeout, 432);
WIRE_AT(lgmp_header_queue, count, 440);
WIRE_AT(lgmp_header_queue, cMsgLock, 444);
WIRE_AT(lgmp_header_queue, cMsgAvail, 448);
WIRE_AT(lgmp_header_queue, cMsgWPos, 452);
WIRE_AT(lgmp_header_queue, cMsgWSerial, 456);
WIRE_AT(lgmp_header_queue, cMsgRSerial, 460);
WIRE_AT(lgmp_header_queue, cMsgs, 464);
WIRE_SIZE(lgmp_header_queue, 1144);
WIRE_AT(lgmp_header, sessionID, 8);
WIRE_AT(lgmp_header, timestamp, 16);
WIRE_AT(lgmp_header, numQueues, 24);
WIRE_AT(lgmp_header, queues, 32);
WIRE_AT(lgmp_header, udataSize, 5752);
WIRE_AT(lgmp_header, udata, LGMP_UDATA_OFFSET);
WIRE_SIZE(lgmp_header, LGMP_HEADER_SIZE);
WIRE_SIZE(lgmp_header_message, 16);
WIRE_SIZE(kvmfr_header, KVMFR_HEADER_SIZE);
WIRE_AT(kvmfr_header, hostver, 12);
WIRE_AT(kvmfr_header, features, 44);
WIRE_SIZE(kvmfr_record, KVMFR_RECORD_HEADER_SIZE);
WIRE_AT(kvmfr_frame, damageRectsCount, 52);
WIRE_AT(kvmfr_frame, damageRects, 56);
WIRE_AT(kvmfr_frame, flags, 1080);
WIRE_SIZE(kvmfr_frame, 1084);
WIRE_AT(kvmfr_cursor, type, 4);
WIRE_AT(kvmfr_cursor, hx, 8);
WIRE_AT(kvmfr_cursor, width, 12);
WIRE_AT(kvmfr_cursor, pitch, 20);
WIRE_SIZE(kvmfr_cursor, 24);
WIRE_SIZE(kvmfr_set_cursor_pos, 12);

#endif
