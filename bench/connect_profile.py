#!/usr/bin/env python3
"""Where a connect's CPU goes in Loadshear's shard threads (NIO-ELT-1-*), from a perf profile.

    perf record -a -e cpu-clock -g -o c.perf -- .build/release/loadshear c.ldsh --quiet
    perf script -i c.perf -F comm,tid,time,ip,sym | python3 bench/connect_profile.py - 10000

(or PERF=c.perf bench/connect.sh, which records the loadshear process only.) The window runs
from the first to the last sample inside Session.startConnect; each sample goes to the
innermost frame that matches a component below (so a connect started from a completion
callback counts as a connect, not as the callback). Prints µs of shard CPU per connect,
given N connects. DETAIL="<component>" also lists that component's frames. cpu-clock only:
this VM has no hardware counters; libc has no frame pointers, so malloc-side stacks stop.
"""
import collections
import os
import re
import sys
samples=[];cur=None
for line in (sys.stdin if sys.argv[1] == '-' else open(sys.argv[1])):
    if not line.strip():
        if cur: samples.append(cur)
        cur=None; continue
    if not line.startswith('\t'):
        p=line.split(); cur={'comm':p[0],'time':float(p[2].rstrip(':')),'frames':[]}
    else:
        parts=line.strip().split(None,1); cur['frames'].append(parts[1] if len(parts)>1 else parts[0])
N=int(sys.argv[2])
sh=[s for s in samples if s['comm'].startswith('NIO-ELT-1')]
marks=[s['time'] for s in sh if any('startConnect' in f for f in s['frames'])]
lo,hi=min(marks),max(marks)
win=[s for s in sh if lo<=s['time']<=hi]
comps=[
 ('kernel: connect()', r'__libc_connect'),
 ('kernel: socket()', r'^__socket$'),
 ('kernel: setsockopt()', r'^setsockopt$'),
 ('kernel: getsockname/getpeername', r'^(getsockname|getpeername)$'),
 ('kernel: getsockopt(SO_ERROR)', r'^getsockopt$'),
 ('kernel: epoll_ctl()', r'^epoll_ctl$'),
 ('kernel: epoll_wait()', r'^epoll_wait$'),
 ('NIO SocketAddress from sockaddr (5 per connect, inet_ntop)', r'sockaddr_storageV8NIOPosixE7convert|SocketAddressOyACSo11sockaddr_in'),
 ('NIO SocketChannel init (rest)', r'SocketChannelC9eventLoop14protocolFamily'),
 ('NIO ChannelOptions applyAll / setOption', r'ChannelOptionsV7Storage|setOption'),
 ('NIO register (epoll ADD)', r'SelectableEventLoopC8register|safeRegister|becomeFullyRegistered'),
 ('NIO connect-timeout task schedule/cancel', r'ScheduledV6cancel|_prepareToSchedule|scheduleTask|HeapV|_schedule0'),
 ('channelInitializer + addHandler', r'channelInitializer|addHandler|syncOperations|TCPSessionC11openChannel.*U_'),
 ('Loadshear Session.active/didBecomeActive', r'LoadshearEngine7SessionC6active|didBecomeActive'),
 ('NIO finishConnect/becomeActive (rest)', r'finishConnect|becomeActive'),
 ('NIO promises/futures/callbacks', r'EventLoopFuture|EventLoopPromise|CallbackList|makePromise'),
 ('NIO ClientBootstrap (rest)', r'ClientBootstrap'),
 ('NIO SocketChannel.connect (rest)', r'SocketChannelC07connect|BaseSocketChannelC8connect|7connect2to7promise'),
 ('Loadshear startConnect/pump/connectDone (rest)', r'LoadshearEngine'),
 ('NIO event loop (rest)', r'NIOPosix'),
]
c=collections.Counter()
for s in win:
    k=None
    for f in s['frames']:
        for name,rx in comps:
            if re.search(rx,f): k=name;break
        if k: break
    if k is None:
        fr=s['frames']
        if any('mprotect' in f for f in fr): k='malloc heap growth (mprotect), no stack'
        elif any('asm_exc_page_fault' in f for f in fr): k='page faults, no stack'
        elif fr and fr[0].startswith('$s') is False and any(x in fr[0] for x in ('malloc','free','swift_')): k='runtime/malloc, no stack'
        else: k='unattributed (broken stack)'
    c[k]+=1
tot=sum(c.values())
print(f"window {hi-lo:.3f}s, {tot/4000/N*1e6:.1f} us shard CPU per connect")
for k,v in c.most_common(): print(f"  {v/4000/N*1e6:6.1f} us  {v/tot*100:5.1f}%  {k}")
want=os.environ.get('DETAIL')  # a component's name: its innermost frames and leaves
if want:
    d=collections.Counter(); d2=collections.Counter()
    for s in win:
        k=None;kf=None
        for f in s['frames']:
            for name,rx in comps:
                if re.search(rx,f): k=name;kf=f;break
            if k: break
        if k==want:
            d[kf[:130]]+=1; d2[s['frames'][0][:80]]+=1
    print('-- innermost frame'); 
    for k,v in d.most_common(15): print(f"  {v/4000/N*1e6:6.2f} us {k}")
    print('-- leaf');
    for k,v in d2.most_common(15): print(f"  {v/4000/N*1e6:6.2f} us {k}")
