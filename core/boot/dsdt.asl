/*
 * The DSDT of the crosvm x86_64 platform, compiled by iasl at build time and embedded into
 * the VMM (core/boot/acpi.cmake). core/boot/acpi.c copies it into guest memory and patches the QWord
 * placeholders below with values only known at run time; it refuses to build the tables if
 * a placeholder is missing or appears more than once, so keep each constant unique.
 *
 * Fixed addresses here must agree with core/layout.h and legacy/acpi_pm.h; test_acpi checks
 * the ones a guest depends on (ECAM, PM block, _S5, _PRT, the PCI windows).
 */
DefinitionBlock ("", "DSDT", 2, "CROSVM", "CROSVMDT", 0x00000001)
{
	/*
	 * Platform features chosen on the command line: bit 0 CMOS RTC present, bit 1 i8042
	 * present (core/boot/acpi.h: ACPI_DSDT_FEAT_*). The constant is a placeholder
	 * (ACPI_DSDT_PH_FEAT), as are those of the 64-bit window (ACPI_DSDT_PH_MMIO64_*).
	 */
	Name (FEAT, 0x7E3A19C4D2B85F60)

	/*
	 * S5 (soft off): SLP_TYP 5 in PM1a_CNT. legacy/acpi_pm.c powers off on it
	 * (ACPI_PM_SLP_TYP_S5). No other sleep state is offered.
	 */
	Name (_S5, Package (0x04) { 0x05, 0x05, Zero, Zero })

	Scope (\_SB)
	{
		Device (PC00)
		{
			Name (_HID, EisaId ("PNP0A08"))
			Name (_CID, EisaId ("PNP0A03"))
			Name (_SEG, Zero)
			Name (_BBN, Zero)
			Name (_UID, Zero)

			/*
			 * The legacy I/O ports below 0xd00 are forwarded too, as on a PC where the
			 * ISA devices sit behind the host bridge; the motherboard device below keeps
			 * the OS from handing out the ports our own devices use.
			 */
			Name (_CRS, ResourceTemplate ()
			{
				WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
					0x0000, 0x0000, 0x003F, 0x0000, 0x0040)
				IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
				WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
					0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8)
				WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
					0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300)
				DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
					NonCacheable, ReadWrite,
					0x00000000, 0xD0000000, 0xF3FFFFFF, 0x00000000, 0x24000000)
				/* The 64-bit window: min, max and length are placeholders. */
				QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
					NonCacheable, ReadWrite,
					0x0000000000000000, 0x3C5A96E100000000, 0x3C5A97D81B2C2FFF,
					0x0000000000000000, 0x000000F71B2C3000)
			})

			/*
			 * INTx of slot d, pin p (0 = INTA) is wired to GSI 16 + ((d + p) % 4), level
			 * triggered, active low: the usual swizzle over four IOAPIC pins.
			 */
			Name (_PRT, Package (0x80)
			{
			Package () { 0x0000FFFF, 0, Zero, 16 }, Package () { 0x0000FFFF, 1, Zero, 17 },
			Package () { 0x0000FFFF, 2, Zero, 18 }, Package () { 0x0000FFFF, 3, Zero, 19 },
			Package () { 0x0001FFFF, 0, Zero, 17 }, Package () { 0x0001FFFF, 1, Zero, 18 },
			Package () { 0x0001FFFF, 2, Zero, 19 }, Package () { 0x0001FFFF, 3, Zero, 16 },
			Package () { 0x0002FFFF, 0, Zero, 18 }, Package () { 0x0002FFFF, 1, Zero, 19 },
			Package () { 0x0002FFFF, 2, Zero, 16 }, Package () { 0x0002FFFF, 3, Zero, 17 },
			Package () { 0x0003FFFF, 0, Zero, 19 }, Package () { 0x0003FFFF, 1, Zero, 16 },
			Package () { 0x0003FFFF, 2, Zero, 17 }, Package () { 0x0003FFFF, 3, Zero, 18 },
			Package () { 0x0004FFFF, 0, Zero, 16 }, Package () { 0x0004FFFF, 1, Zero, 17 },
			Package () { 0x0004FFFF, 2, Zero, 18 }, Package () { 0x0004FFFF, 3, Zero, 19 },
			Package () { 0x0005FFFF, 0, Zero, 17 }, Package () { 0x0005FFFF, 1, Zero, 18 },
			Package () { 0x0005FFFF, 2, Zero, 19 }, Package () { 0x0005FFFF, 3, Zero, 16 },
			Package () { 0x0006FFFF, 0, Zero, 18 }, Package () { 0x0006FFFF, 1, Zero, 19 },
			Package () { 0x0006FFFF, 2, Zero, 16 }, Package () { 0x0006FFFF, 3, Zero, 17 },
			Package () { 0x0007FFFF, 0, Zero, 19 }, Package () { 0x0007FFFF, 1, Zero, 16 },
			Package () { 0x0007FFFF, 2, Zero, 17 }, Package () { 0x0007FFFF, 3, Zero, 18 },
			Package () { 0x0008FFFF, 0, Zero, 16 }, Package () { 0x0008FFFF, 1, Zero, 17 },
			Package () { 0x0008FFFF, 2, Zero, 18 }, Package () { 0x0008FFFF, 3, Zero, 19 },
			Package () { 0x0009FFFF, 0, Zero, 17 }, Package () { 0x0009FFFF, 1, Zero, 18 },
			Package () { 0x0009FFFF, 2, Zero, 19 }, Package () { 0x0009FFFF, 3, Zero, 16 },
			Package () { 0x000AFFFF, 0, Zero, 18 }, Package () { 0x000AFFFF, 1, Zero, 19 },
			Package () { 0x000AFFFF, 2, Zero, 16 }, Package () { 0x000AFFFF, 3, Zero, 17 },
			Package () { 0x000BFFFF, 0, Zero, 19 }, Package () { 0x000BFFFF, 1, Zero, 16 },
			Package () { 0x000BFFFF, 2, Zero, 17 }, Package () { 0x000BFFFF, 3, Zero, 18 },
			Package () { 0x000CFFFF, 0, Zero, 16 }, Package () { 0x000CFFFF, 1, Zero, 17 },
			Package () { 0x000CFFFF, 2, Zero, 18 }, Package () { 0x000CFFFF, 3, Zero, 19 },
			Package () { 0x000DFFFF, 0, Zero, 17 }, Package () { 0x000DFFFF, 1, Zero, 18 },
			Package () { 0x000DFFFF, 2, Zero, 19 }, Package () { 0x000DFFFF, 3, Zero, 16 },
			Package () { 0x000EFFFF, 0, Zero, 18 }, Package () { 0x000EFFFF, 1, Zero, 19 },
			Package () { 0x000EFFFF, 2, Zero, 16 }, Package () { 0x000EFFFF, 3, Zero, 17 },
			Package () { 0x000FFFFF, 0, Zero, 19 }, Package () { 0x000FFFFF, 1, Zero, 16 },
			Package () { 0x000FFFFF, 2, Zero, 17 }, Package () { 0x000FFFFF, 3, Zero, 18 },
			Package () { 0x0010FFFF, 0, Zero, 16 }, Package () { 0x0010FFFF, 1, Zero, 17 },
			Package () { 0x0010FFFF, 2, Zero, 18 }, Package () { 0x0010FFFF, 3, Zero, 19 },
			Package () { 0x0011FFFF, 0, Zero, 17 }, Package () { 0x0011FFFF, 1, Zero, 18 },
			Package () { 0x0011FFFF, 2, Zero, 19 }, Package () { 0x0011FFFF, 3, Zero, 16 },
			Package () { 0x0012FFFF, 0, Zero, 18 }, Package () { 0x0012FFFF, 1, Zero, 19 },
			Package () { 0x0012FFFF, 2, Zero, 16 }, Package () { 0x0012FFFF, 3, Zero, 17 },
			Package () { 0x0013FFFF, 0, Zero, 19 }, Package () { 0x0013FFFF, 1, Zero, 16 },
			Package () { 0x0013FFFF, 2, Zero, 17 }, Package () { 0x0013FFFF, 3, Zero, 18 },
			Package () { 0x0014FFFF, 0, Zero, 16 }, Package () { 0x0014FFFF, 1, Zero, 17 },
			Package () { 0x0014FFFF, 2, Zero, 18 }, Package () { 0x0014FFFF, 3, Zero, 19 },
			Package () { 0x0015FFFF, 0, Zero, 17 }, Package () { 0x0015FFFF, 1, Zero, 18 },
			Package () { 0x0015FFFF, 2, Zero, 19 }, Package () { 0x0015FFFF, 3, Zero, 16 },
			Package () { 0x0016FFFF, 0, Zero, 18 }, Package () { 0x0016FFFF, 1, Zero, 19 },
			Package () { 0x0016FFFF, 2, Zero, 16 }, Package () { 0x0016FFFF, 3, Zero, 17 },
			Package () { 0x0017FFFF, 0, Zero, 19 }, Package () { 0x0017FFFF, 1, Zero, 16 },
			Package () { 0x0017FFFF, 2, Zero, 17 }, Package () { 0x0017FFFF, 3, Zero, 18 },
			Package () { 0x0018FFFF, 0, Zero, 16 }, Package () { 0x0018FFFF, 1, Zero, 17 },
			Package () { 0x0018FFFF, 2, Zero, 18 }, Package () { 0x0018FFFF, 3, Zero, 19 },
			Package () { 0x0019FFFF, 0, Zero, 17 }, Package () { 0x0019FFFF, 1, Zero, 18 },
			Package () { 0x0019FFFF, 2, Zero, 19 }, Package () { 0x0019FFFF, 3, Zero, 16 },
			Package () { 0x001AFFFF, 0, Zero, 18 }, Package () { 0x001AFFFF, 1, Zero, 19 },
			Package () { 0x001AFFFF, 2, Zero, 16 }, Package () { 0x001AFFFF, 3, Zero, 17 },
			Package () { 0x001BFFFF, 0, Zero, 19 }, Package () { 0x001BFFFF, 1, Zero, 16 },
			Package () { 0x001BFFFF, 2, Zero, 17 }, Package () { 0x001BFFFF, 3, Zero, 18 },
			Package () { 0x001CFFFF, 0, Zero, 16 }, Package () { 0x001CFFFF, 1, Zero, 17 },
			Package () { 0x001CFFFF, 2, Zero, 18 }, Package () { 0x001CFFFF, 3, Zero, 19 },
			Package () { 0x001DFFFF, 0, Zero, 17 }, Package () { 0x001DFFFF, 1, Zero, 18 },
			Package () { 0x001DFFFF, 2, Zero, 19 }, Package () { 0x001DFFFF, 3, Zero, 16 },
			Package () { 0x001EFFFF, 0, Zero, 18 }, Package () { 0x001EFFFF, 1, Zero, 19 },
			Package () { 0x001EFFFF, 2, Zero, 16 }, Package () { 0x001EFFFF, 3, Zero, 17 },
			Package () { 0x001FFFFF, 0, Zero, 19 }, Package () { 0x001FFFFF, 1, Zero, 16 },
			Package () { 0x001FFFFF, 2, Zero, 17 }, Package () { 0x001FFFFF, 3, Zero, 18 }
			})

			/*
			 * No firmware runs behind the guest's back, so the OS gets control of every
			 * feature it asks for (PCI Firmware Specification 3.3, 4.5).
			 */
			Method (_OSC, 4, NotSerialized)
			{
				CreateDWordField (Arg3, Zero, CDW1)
				If ((Arg0 == ToUUID ("33db4d5b-1ff7-401c-9657-7441c03dd766")))
				{
					If ((Arg1 != One))
					{
						/* Unrecognized revision. */
						CDW1 |= 0x08
					}
				}
				Else
				{
					/* Unrecognized UUID. */
					CDW1 |= 0x04
				}
				Return (Arg3)
			}
		}

		/*
		 * Motherboard resources: the ECAM window (Linux only uses MCFG when it is
		 * reserved here or in the e820 map) and the ACPI PM register block.
		 */
		Device (MRES)
		{
			Name (_HID, EisaId ("PNP0C02"))
			Name (_UID, Zero)
			Name (_CRS, ResourceTemplate ()
			{
				Memory32Fixed (ReadWrite, 0xF4000000, 0x04000000)
				IO (Decode16, 0x0600, 0x0600, 0x01, 0x18)
			})
		}

		Device (COM1)
		{
			Name (_HID, EisaId ("PNP0501"))
			Name (_UID, One)
			Name (_CRS, ResourceTemplate ()
			{
				IO (Decode16, 0x03F8, 0x03F8, 0x08, 0x08)
				IRQNoFlags () {4}
			})
		}

		Device (COM2)
		{
			Name (_HID, EisaId ("PNP0501"))
			Name (_UID, 0x02)
			Name (_CRS, ResourceTemplate ()
			{
				IO (Decode16, 0x02F8, 0x02F8, 0x08, 0x08)
				IRQNoFlags () {3}
			})
		}

		Device (COM3)
		{
			Name (_HID, EisaId ("PNP0501"))
			Name (_UID, 0x03)
			Name (_CRS, ResourceTemplate ()
			{
				IO (Decode16, 0x03E8, 0x03E8, 0x08, 0x08)
				IRQNoFlags () {4}
			})
		}

		Device (COM4)
		{
			Name (_HID, EisaId ("PNP0501"))
			Name (_UID, 0x04)
			Name (_CRS, ResourceTemplate ()
			{
				IO (Decode16, 0x02E8, 0x02E8, 0x08, 0x08)
				IRQNoFlags () {3}
			})
		}

		Device (RTC)
		{
			Name (_HID, EisaId ("PNP0B00"))
			Name (_CRS, ResourceTemplate ()
			{
				IO (Decode16, 0x0070, 0x0070, 0x01, 0x02)
				IRQNoFlags () {8}
			})
			Method (_STA, 0, NotSerialized)
			{
				If ((FEAT & One))
				{
					Return (0x0F)
				}
				Return (Zero)
			}
		}

		/*
		 * pvpanic (legacy/pvpanic.c) at its ISA port, described as QEMU describes its
		 * ISA pvpanic: _HID QEMU0001 and one I/O port. Linux binds pvpanic-mmio to it
		 * (it takes an I/O or memory resource, reads the supported events from the
		 * port and writes PANICKED on a panic). Always present.
		 */
		Device (PEVT)
		{
			Name (_HID, "QEMU0001")
			Name (_UID, Zero)
			Name (_STA, 0x0F)
			Name (_CRS, ResourceTemplate ()
			{
				IO (Decode16, 0x0505, 0x0505, 0x01, 0x01)
			})
		}

		Device (KBD)
		{
			Name (_HID, EisaId ("PNP0303"))
			Name (_CRS, ResourceTemplate ()
			{
				IO (Decode16, 0x0060, 0x0060, 0x01, 0x01)
				IO (Decode16, 0x0064, 0x0064, 0x01, 0x01)
				IRQNoFlags () {1}
			})
			Method (_STA, 0, NotSerialized)
			{
				If ((FEAT & 0x02))
				{
					Return (0x0F)
				}
				Return (Zero)
			}
		}
	}
}
