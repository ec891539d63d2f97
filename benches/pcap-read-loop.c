/* pcap-read-loop.c -- the limit: a bare libpcap read loop, no parsing.
 *
 * Opens a pcap or pcapng file with pcap_open_offline, reads every record with
 * pcap_next_ex and prints the number of packets and of captured bytes.  bench.sh times it
 * as the upper bound of what any libpcap-based reader (specter, tshark, Suricata) can do
 * on the same file.  Build: gcc -O2 -o pcap-read-loop pcap-read-loop.c -lpcap
 */
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    char err[PCAP_ERRBUF_SIZE];
    struct pcap_pkthdr *hdr;
    const u_char *data;
    unsigned long long packets = 0, bytes = 0, sum = 0;
    pcap_t *p;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.pcap\n", argv[0]);
        return 2;
    }
    p = pcap_open_offline(argv[1], err);
    if (p == NULL) {
        fprintf(stderr, "pcap_open_offline: %s\n", err);
        return 1;
    }
    while ((rc = pcap_next_ex(p, &hdr, &data)) == 1) {
        packets++;
        bytes += hdr->caplen;
        /* touch the packet once so the loop reads the data, as a parser would */
        if (hdr->caplen > 0)
            sum += data[hdr->caplen - 1];
    }
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "pcap_next_ex: %s\n", pcap_geterr(p));
        pcap_close(p);
        return 1;
    }
    pcap_close(p);
    printf("packets %llu bytes %llu check %llu\n", packets, bytes, sum);
    return 0;
}
