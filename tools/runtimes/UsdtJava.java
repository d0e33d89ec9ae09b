// A small Java program for schedscope's USDT e2e tests. It prints JSON lines
// about itself (the ground truth):
//   {"ev":"ready","pid":N}            then waits for a line on stdin
//   {"ev":"done", ...}                after the phases below, then exits
// Phases: a burst of named threads ("burst-worker-K", each sleeping briefly), forced
// full GCs (System.gc(), each timed), and a contended monitor ("contender-K" threads
// queueing on one lock held by the main thread).
// An optional LIVE_MB keeps that many MiB of small arrays live through the GCs, so each full
// GC has a heap to walk (long safepoints: the safepoint_pause alert).
// Usage: java [-XX:+ExtendedDTraceProbes] -cp DIR UsdtJava BURST GCS CONTENDERS [LIVE_MB]
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;

public class UsdtJava {
  static final Object LOCK = new Object();
  static volatile Object sink;

  static String q(String s) { return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\""; }

  static long gcCount() {
    long n = 0;
    for (GarbageCollectorMXBean b : ManagementFactory.getGarbageCollectorMXBeans())
      n += Math.max(0, b.getCollectionCount());
    return n;
  }

  public static void main(String[] args) throws Exception {
    int burst = args.length > 0 ? Integer.parseInt(args[0]) : 20;
    int gcs = args.length > 1 ? Integer.parseInt(args[1]) : 3;
    int contenders = args.length > 2 ? Integer.parseInt(args[2]) : 4;
    int liveMb = args.length > 3 ? Integer.parseInt(args[3]) : 0;
    System.out.println("{\"ev\":\"ready\",\"pid\":" + ProcessHandle.current().pid() + "}");
    System.out.flush();
    new BufferedReader(new InputStreamReader(System.in)).readLine();

    // 1. A burst of named threads.
    List<Thread> ts = new ArrayList<>();
    StringBuilder threads = new StringBuilder();
    for (int i = 0; i < burst; i++) {
      Thread t = new Thread(() -> {
        try { Thread.sleep(300); } catch (InterruptedException e) { }
      }, "burst-worker-" + i);
      ts.add(t);
    }
    for (Thread t : ts) t.start();
    for (Thread t : ts) t.join();
    for (int i = 0; i < ts.size(); i++)
      threads.append(i == 0 ? "" : ",").append("{\"name\":").append(q(ts.get(i).getName()))
          .append(",\"id\":").append(ts.get(i).getId()).append("}");

    // 2. Forced GCs, each timed (with some live data so the collection has work).
    long p0 = System.nanoTime();
    long gcBefore = gcCount();
    StringBuilder gcMs = new StringBuilder(), gcSpans = new StringBuilder();
    List<int[]> live = new ArrayList<>();
    for (int i = 0; i < 20000; i++) live.add(new int[64]);
    for (long i = 0; i < liveMb * 1024L; i++) live.add(new int[250]);  // ~1 KiB each
    for (int i = 0; i < gcs; i++) {
      for (int j = 0; j < 200000; j++) sink = new int[16];
      long t0 = System.nanoTime();
      System.gc();
      long t1 = System.nanoTime();
      gcMs.append(i == 0 ? "" : ",").append((t1 - t0) / 1e6);
      // System.nanoTime() is CLOCK_MONOTONIC on Linux, the clock of schedscope's timestamps.
      gcSpans.append(i == 0 ? "" : ",").append("[").append(t0).append(",").append(t1).append("]");
      Thread.sleep(100);
    }
    long gcAfter = gcCount();
    long p1 = System.nanoTime();
    sink = live;

    // 3. A contended monitor: main holds LOCK while the contenders queue on it.
    List<Thread> cs = new ArrayList<>();
    StringBuilder cnames = new StringBuilder();
    synchronized (LOCK) {
      for (int i = 0; i < contenders; i++) {
        Thread t = new Thread(() -> {
          synchronized (LOCK) { sink = Thread.currentThread().getName(); }
        }, "contender-" + i);
        cs.add(t);
        t.start();
      }
      // Wait until every contender is blocked on the monitor.
      long deadline = System.currentTimeMillis() + 5000;
      for (Thread t : cs)
        while (t.getState() != Thread.State.BLOCKED && System.currentTimeMillis() < deadline)
          Thread.sleep(5);
      Thread.sleep(50);
    }
    for (Thread t : cs) t.join();
    for (int i = 0; i < cs.size(); i++)
      cnames.append(i == 0 ? "" : ",").append("{\"name\":").append(q(cs.get(i).getName()))
          .append(",\"id\":").append(cs.get(i).getId()).append("}");

    System.out.println("{\"ev\":\"done\",\"burst\":[" + threads + "],\"gc_ms\":[" + gcMs
        + "],\"gc_spans\":[" + gcSpans + "],\"gc_phase\":[" + p0 + "," + p1 + "],\"gc_collections\":" + (gcAfter - gcBefore) + ",\"contenders\":[" + cnames + "]}");
    System.out.flush();
    Thread.sleep(300);
  }
}
