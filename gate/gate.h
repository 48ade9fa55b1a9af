/*
 * gate.h — `wxauth gate`, the nginx auth_request service.
 */
#ifndef WX_GATE_H
#define WX_GATE_H

int wx_gate_main(int argc, char **argv);

#endif
