/* Compile-time proof that wire.h matches the B7 layout (offsets from lgmp-kvmfr.md 2.2-2.4, 5.1-5.5)
 * and wire_master.h the master layout. */
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

/* LGMP 12 + KVMFR 34 (wire_master.h; lgmp-kvmfr.md 4.2 and 6, the lg-master fixtures) */
WIRE_SIZE(lgmp12_client_message, 80);
WIRE_AT(lgmp12_client_message, clientID, 4);
WIRE_AT(lgmp12_client_message, data, 16);
WIRE_AT(lgmp12_header_queue, count, 8);
WIRE_AT(lgmp12_header_queue, msgTimeout, 16);
WIRE_AT(lgmp12_header_queue, lock, 64);
WIRE_AT(lgmp12_header_queue, cMsgLock, 128);
WIRE_AT(lgmp12_header_queue, cMsgAvail, 132);
WIRE_AT(lgmp12_header_queue, cMsgWPos, 136);
WIRE_AT(lgmp12_header_queue, cMsgWSerial, 140);
WIRE_AT(lgmp12_header_queue, cMsgRSerial, 144);
WIRE_AT(lgmp12_header_queue, subs, 192);
WIRE_AT(lgmp12_header_queue, newSubCount, 196);
WIRE_AT(lgmp12_header_queue, clientID, 200);
WIRE_AT(lgmp12_header_queue, timeout, 232);
WIRE_AT(lgmp12_header_queue, queueID, 296);
WIRE_AT(lgmp12_header_queue, numMessages, 300);
WIRE_AT(lgmp12_header_queue, messagesOffset, 304);
WIRE_AT(lgmp12_header_queue, maxTime, 308);
WIRE_AT(lgmp12_header_queue, cMsgs, 320);
WIRE_SIZE(lgmp12_header_queue, 1600);
WIRE_AT(lgmp12_header, nextClientID, 8);
WIRE_AT(lgmp12_header, queues, 64);
WIRE_AT(lgmp12_header, magic, LGMP12_MAGIC_OFFSET);
WIRE_AT(lgmp12_header, version, 9668);
WIRE_AT(lgmp12_header, sessionID, 9672);
WIRE_AT(lgmp12_header, numQueues, 9676);
WIRE_AT(lgmp12_header, udataSize, 9680);
WIRE_AT(lgmp12_header, udata, LGMP12_UDATA_OFFSET);
WIRE_SIZE(lgmp12_header, LGMP12_HEADER_SIZE);
WIRE_AT(lgmp12_header_message, size, 8);
WIRE_AT(lgmp12_header_message, offset, 12);
WIRE_AT(lgmp12_header_message, pendingSubs, 16);
WIRE_SIZE(lgmp12_header_message, 32);
WIRE_AT(kvmfr34_frame, offset, 48);
WIRE_AT(kvmfr34_frame, flags, 52);
WIRE_AT(kvmfr34_frame, damageRectsCount, 56);
WIRE_AT(kvmfr34_frame, sdrWhiteLevel, 60);
WIRE_AT(kvmfr34_frame, captureTime, 64);
WIRE_AT(kvmfr34_frame, readyLeadTime, 104);
WIRE_AT(kvmfr34_frame, timingSerial, 112);
WIRE_AT(kvmfr34_frame, timingValid, 116);
WIRE_AT(kvmfr34_frame, timingFlags, 120);
WIRE_AT(kvmfr34_frame, hdrDisplayPrimary, 128);
WIRE_AT(kvmfr34_frame, hdrWhitePoint, 140);
WIRE_AT(kvmfr34_frame, hdrMaxDisplayLuminance, 144);
WIRE_AT(kvmfr34_frame, hdrMinDisplayLuminance, 148);
WIRE_AT(kvmfr34_frame, hdrMaxContentLightLevel, 152);
WIRE_AT(kvmfr34_frame, hdrMaxFrameAverageLightLevel, 156);
WIRE_AT(kvmfr34_frame, scheduleGeneration, 160);
WIRE_AT(kvmfr34_frame, scheduleDeadlineSerial, 168);
WIRE_AT(kvmfr34_frame, hdrReserved, 172);
WIRE_AT(kvmfr34_frame, damageRects, 192);
WIRE_SIZE(kvmfr34_frame, 1216);
WIRE_AT(kvmfr34_cursor, sdrWhiteLevel, 24);
WIRE_SIZE(kvmfr34_cursor, 28);
WIRE_SIZE(kvmfr_window_size, 12);

#endif
