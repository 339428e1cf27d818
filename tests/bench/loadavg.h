// The machine's load averages (the first `count` of /proc/loadavg's three, space-separated), so
// a benchmark can show how busy the shared machine was around its run; "?" when unreadable.
#pragma once

#include <cstdio>
#include <string>

inline std::string loadAverage(int count) {
    std::FILE* f = std::fopen("/proc/loadavg", "r");
    if (!f)
        return "?";
    char buf[64] = {};
    const bool ok = std::fgets(buf, sizeof buf, f) != nullptr;
    std::fclose(f);
    if (!ok)
        return "?";
    const std::string s(buf);
    std::size_t cut = 0;
    for (int i = 0; i < count && cut != std::string::npos; ++i)
        cut = s.find(' ', cut + (i ? 1 : 0));
    return s.substr(0, cut);
}
